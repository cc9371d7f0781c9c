import { randomUUID } from 'node:crypto';
import type { ApiResponse, TestApp } from './test-app';
import { TEST_ADMIN_TOKEN } from './test-env';

export interface Customer {
  id: string;
  email: string;
  token: string;
}

export interface Section {
  name: string;
  rows: number;
  seatsPerRow: number;
  priceCents: number;
}

/** A general-admission section: `capacity` units (1–50,000) sold by quantity, no rows. */
export interface GaSection {
  name: string;
  capacity: number;
  priceCents: number;
}

export interface EventOptions {
  /** Sent as `orphanPolicy` when given ("off" or "strict"); left out otherwise (the default). */
  orphanPolicy?: string;
}

/** Creates an event through the admin API; answers its id. */
export async function createEvent(
  api: TestApp,
  sections: (Section | GaSection)[] = [
    { name: 'Floor', rows: 2, seatsPerRow: 5, priceCents: 5000 },
  ],
  options: EventOptions = {},
): Promise<string> {
  const response = await api.post(
    '/admin/events',
    {
      name: `Event ${randomUUID().slice(0, 8)}`,
      startsAt: '2027-06-01T19:30:00Z',
      venue: 'Test Hall',
      currency: 'EUR',
      sections,
      ...(options.orphanPolicy === undefined ? {} : { orphanPolicy: options.orphanPolicy }),
    },
    { token: TEST_ADMIN_TOKEN },
  );
  if (response.status !== 201)
    throw new Error(`createEvent: ${response.status} ${JSON.stringify(response.body)}`);
  return response.body.id;
}

export async function registerCustomer(api: TestApp): Promise<Customer> {
  const email = `c-${randomUUID()}@example.test`;
  const response = await api.post('/customers', { email, name: 'Test Customer' });
  if (response.status !== 201) throw new Error(`registerCustomer: ${response.status}`);
  return { id: response.body.id, email, token: response.body.token };
}

export async function registerCustomers(api: TestApp, count: number): Promise<Customer[]> {
  const customers: Customer[] = [];
  // In slices, so registration itself is not the load test.
  for (let i = 0; i < count; i += 50) {
    const slice = await Promise.all(
      Array.from({ length: Math.min(50, count - i) }, () => registerCustomer(api)),
    );
    customers.push(...slice);
  }
  return customers;
}

export function countStatuses(statuses: number[]): Record<number, number> {
  const counts: Record<number, number> = {};
  for (const status of statuses) counts[status] = (counts[status] ?? 0) + 1;
  return counts;
}

/** `POST /bookings {eventId, section, quantity}`: a hold of `quantity` units of a GA section. */
export function holdUnits(
  api: TestApp,
  customer: Customer,
  eventId: string,
  section: string,
  quantity: number,
): Promise<ApiResponse> {
  return api.post('/bookings', { eventId, section, quantity }, { token: customer.token });
}
