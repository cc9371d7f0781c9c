/** A newly registered customer with its bearer token. */
export class CustomerCreatedDto {
  /** Customer id (UUID). */
  id: string;
  email: string;
  name: string;
  /** Bearer token for `Authorization: Bearer …`. Shown once: only its hash is stored. */
  token: string;
}
