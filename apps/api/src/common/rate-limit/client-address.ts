import { isIPv6 } from 'node:net';

/**
 * Whom an anonymous request counts against: its IPv4 address, or the /64 network of its IPv6
 * address — one subscriber is routinely given a whole /64, so counting single v6 addresses would
 * give it billions of buckets. An IPv4-mapped v6 address is its IPv4 address.
 */
export function clientAddress(ip: string | undefined): string {
  if (!ip) return 'unknown';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped) return mapped[1];
  if (!isIPv6(ip)) return ip;
  return `${expandIPv6(ip).slice(0, 4).join(':')}::/64`;
}

/** The eight groups of an IPv6 address, `::` filled in, each without leading zeros. */
function expandIPv6(ip: string): string[] {
  const bare = ip.split('%')[0].toLowerCase();
  const [head, tail = ''] = bare.split('::');
  const left = head ? head.split(':') : [];
  const right = bare.includes('::') && tail ? tail.split(':') : [];
  const missing = bare.includes('::') ? 8 - left.length - right.length : 0;
  return [...left, ...Array<string>(missing).fill('0'), ...right].map((group) =>
    String(parseInt(group || '0', 16).toString(16)),
  );
}
