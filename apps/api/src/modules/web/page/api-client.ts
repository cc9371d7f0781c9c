import createClient, { type Middleware } from 'openapi-fetch';
import type { components, paths } from './api-schema';
import { currentCustomer } from './customer-session';

/**
 * The page's API client: openapi-fetch typed by api-schema.d.ts, which `npm run generate:api-types`
 * writes from the built app's OpenAPI document. A changed route, parameter or DTO therefore fails
 * the page's typecheck instead of its users.
 */

type Schemas = components['schemas'];

export type CatalogEvent = Schemas['EventDto'];
export type Section = Schemas['SectionDto'];
export type Seat = Schemas['SeatDto'];
export type SeatStatus = Seat['status'];
export type Booking = Schemas['BookingDto'];
/** POST /bookings without the event: chosen seats, the best N, or N general-admission places. */
export type HoldRequest = Omit<Schemas['CreateBookingDto'], 'eventId'>;
export type EventsQuery = NonNullable<paths['/events']['get']['parameters']['query']>;

/**
 * A problem+json body as the page reads it. Every member may be missing (a proxy's error page, a
 * body that is not JSON); the ones after ProblemDetailsDto's are members some problems add that the
 * document does not list (booking.errors.ts, payment.errors.ts).
 */
export type ProblemBody = Partial<Schemas['ProblemDetailsDto']> & {
  available?: number;
  quantity?: number;
  limit?: number;
  orphanSeats?: string[];
  currentStatus?: Booking['status'];
  declineCode?: string;
  reason?: string;
};

/** A refused request (`status` > 0) or one that never got an answer (`status` 0). */
export class ApiProblem extends Error {
  constructor(
    readonly status: number,
    readonly body: ProblemBody,
  ) {
    super(body.detail ?? `HTTP ${status}`);
  }
}

let onUnauthorized = (): void => undefined;

/** Called when the API rejects the customer's token (401 to a request that sent it). */
export function whenUnauthorized(listener: () => void): void {
  onUnauthorized = listener;
}

const rejectedToken: Middleware = {
  onResponse({ request, response }) {
    if (response.status === 401 && request.headers.has('authorization')) onUnauthorized();
  },
};

/** Same origin: the page is served by the API it calls (its CSP allows no other). */
export const api = createClient<paths>({ headers: { accept: 'application/json' } });
api.use(rejectedToken);

/** The `headers` of a call made as the customer: their bearer token, none before registering. */
export function asCustomer(): Record<string, string> {
  const customer = currentCustomer();
  return customer ? { authorization: `Bearer ${customer.token}` } : {};
}

/** What an openapi-fetch call resolves to: typed data on success, the parsed body otherwise. */
interface Answer<D> {
  data?: D;
  error?: unknown;
  response: Response;
}

function problemBody(error: unknown): ProblemBody {
  return typeof error === 'object' && error !== null ? (error as ProblemBody) : {};
}

/**
 * The data of a successful call, with its response (for headers); a refusal throws an ApiProblem
 * with the problem+json body, and a fetch that failed (offline, server gone) one with status 0.
 */
export async function call<D>(
  request: Promise<Answer<D>>,
): Promise<{ data: D; response: Response }> {
  let answer: Answer<D>;
  try {
    answer = await request;
  } catch (error) {
    // fetch rejects with a TypeError when no answer came; anything else is a bug to surface.
    if (error instanceof TypeError) throw new ApiProblem(0, {});
    throw error;
  }
  const { data, error, response } = answer;
  if (!response.ok || data === undefined) throw new ApiProblem(response.status, problemBody(error));
  return { data, response };
}
