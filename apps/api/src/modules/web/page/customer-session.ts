import type { components } from './api-schema';

/** POST /customers' answer, kept as it came: the token is shown once. */
export type Customer = components['schemas']['CustomerCreatedDto'];

/** In this tab's sessionStorage, so two tabs can be two customers. */
const CUSTOMER_KEY = 'seatlock.customer';

function read(): Customer | null {
  try {
    return JSON.parse(sessionStorage.getItem(CUSTOMER_KEY) ?? 'null') as Customer | null;
  } catch {
    return null;
  }
}

let current = read();

export function currentCustomer(): Customer | null {
  return current;
}

export function saveCustomer(customer: Customer): void {
  current = customer;
  sessionStorage.setItem(CUSTOMER_KEY, JSON.stringify(customer));
}

export function clearCustomer(): void {
  current = null;
  sessionStorage.removeItem(CUSTOMER_KEY);
}
