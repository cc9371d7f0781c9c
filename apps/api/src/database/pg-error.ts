/** SQLSTATEs the API acts on (PostgreSQL manual, appendix A "Error Codes"). */
export const PG_UNIQUE_VIOLATION = '23505';
export const PG_SERIALIZATION_FAILURE = '40001';
export const PG_DEADLOCK_DETECTED = '40P01';
/** The database named in the connection string does not exist. */
export const PG_INVALID_CATALOG_NAME = '3D000';
export const PG_TOO_MANY_CONNECTIONS = '53300';

/**
 * The code of an error from the PostgreSQL driver: its SQLSTATE, or Node's system error code
 * (ECONNREFUSED, …) when the connection itself failed. TypeORM wraps the driver's error in a
 * QueryFailedError (`driverError`); `pg` used directly throws it as is. Undefined for anything else.
 */
export function pgErrorCode(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const { driverError } = error as { driverError?: unknown };
  const source = typeof driverError === 'object' && driverError !== null ? driverError : error;
  const code = (source as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

/** Deadlock or serialization failure: the transaction did nothing and may simply run again. */
export function isPgRetryable(error: unknown): boolean {
  const code = pgErrorCode(error);
  return code === PG_DEADLOCK_DETECTED || code === PG_SERIALIZATION_FAILURE;
}

/**
 * The server is out of reach or going away, not the statement's fault: class 08 (connection
 * exception), 57P0x (shutdown, crash, not accepting connections yet) or too many connections.
 */
export function isPgUnavailableCode(code: string | undefined): boolean {
  return (
    code !== undefined &&
    (code.startsWith('08') || code.startsWith('57P0') || code === PG_TOO_MANY_CONNECTIONS)
  );
}
