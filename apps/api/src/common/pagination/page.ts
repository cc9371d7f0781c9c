import type { FastifyReply, FastifyRequest } from 'fastify';
import type { PageQueryDto } from './page-query.dto';

export interface Page<T> {
  items: T[];
  total: number;
}

/** Sets X-Total-Count and an RFC 8288 Link header for the next/previous pages; returns the items. */
export function sendPage<T>(
  page: Page<T>,
  query: PageQueryDto,
  request: FastifyRequest,
  reply: FastifyReply,
): T[] {
  const [path, search = ''] = request.url.split('?');
  // Filters (e.g. `unread=true`) carry over to the other pages; only limit and offset change.
  const filters = new URLSearchParams(search);
  filters.delete('limit');
  filters.delete('offset');
  const rest = filters.size > 0 ? `&${filters.toString()}` : '';
  const link = (offset: number, rel: string): string =>
    `<${path}?limit=${query.limit}&offset=${offset}${rest}>; rel="${rel}"`;
  const links: string[] = [];
  if (query.offset + query.limit < page.total) links.push(link(query.offset + query.limit, 'next'));
  if (query.offset > 0) links.push(link(Math.max(0, query.offset - query.limit), 'prev'));
  reply.header('X-Total-Count', String(page.total));
  if (links.length > 0) reply.header('Link', links.join(', '));
  return page.items;
}
