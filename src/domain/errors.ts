/**
 * The one error type of the service. Every refusal carries a stable `code` that clients may
 * branch on; Lua scripts return the same codes, and `src/redis/scripts.ts` turns them into this.
 * The HTTP mapping lives in one place too (`httpStatusOf`), so routes never pick statuses.
 */
export const ERROR_CODES = {
  NOT_FOUND: { status: 404, title: 'Not found' },
  NOT_AVAILABLE: { status: 409, title: 'Not available for that window' },
  INVALID_INTERVAL: { status: 400, title: 'Invalid interval' },
  INVALID_TIME_ZONE: { status: 400, title: 'Unknown time zone' },
  INVALID_STATE: { status: 409, title: 'Not allowed in the current state' },
  VERSION_MISMATCH: { status: 409, title: 'Stale version' },
  HAS_FUTURE_BOOKINGS: { status: 409, title: 'The vehicle has trips to come' },
  HOLD_EXPIRED: { status: 410, title: 'Hold expired' },
  HOLD_LIMIT: { status: 429, title: 'Too many live holds' },
  HOLD_RATE_LIMITED: { status: 429, title: 'Holds placed too fast' },
  IDEMPOTENCY_CONFLICT: { status: 422, title: 'Idempotency key reused with other parameters' },
  BUSY: { status: 429, title: 'Vehicle busy, retry shortly' },
  VALIDATION: { status: 400, title: 'Invalid input' },
  FORBIDDEN: { status: 403, title: 'Forbidden' },
  UNAUTHENTICATED: { status: 401, title: 'Authentication required' },
  RATE_LIMITED: { status: 429, title: 'Too many requests' },
  PAYLOAD_TOO_LARGE: { status: 413, title: 'Payload too large' },
  URI_TOO_LONG: { status: 414, title: 'URI too long' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, title: 'Unsupported media type' },
  ROUTE_NOT_FOUND: { status: 404, title: 'No such route' },
  UPGRADE_REQUIRED: { status: 426, title: 'Upgrade to WebSocket required' },
  UNAVAILABLE: { status: 503, title: 'Temporarily unavailable' },
  /** A city of another region (WebSocket topics; REST answers 307 to that region instead). */
  WRONG_REGION: { status: 421, title: 'Served by another region' },
  INTERNAL: { status: 500, title: 'Internal error' },
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export class DomainError extends Error {
  readonly code: ErrorCode;
  readonly detail: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCode, message?: string, detail: Record<string, unknown> = {}) {
    super(message ?? ERROR_CODES[code].title);
    this.name = 'DomainError';
    this.code = code;
    this.detail = detail;
  }
}

export function isErrorCode(value: string): value is ErrorCode {
  return Object.hasOwn(ERROR_CODES, value);
}

export function httpStatusOf(code: ErrorCode): number {
  return ERROR_CODES[code].status;
}

/**
 * What a thrown value says, whatever was thrown: libraries throw Errors, but a `catch` clause
 * types its binding `unknown`, and these three read it without a cast at every call site.
 */
export function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message;
  return typeof err === 'string' ? err : String(err);
}

/** The machine-readable code a driver attaches (pg's SQLSTATE in `code`, jose's `code`, Node's `code`). */
export function codeOf(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const { sqlstate, code } = err as { sqlstate?: unknown; code?: unknown }; // reason: reads two optional fields of any object
  if (typeof sqlstate === 'string') return sqlstate;
  return typeof code === 'string' ? code : undefined;
}

export function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

/** Node's socket errors and PostgreSQL's connection SQLSTATEs that mean "the store is not there now". */
const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTCONN',
  'EHOSTUNREACH',
  'ENOTFOUND',
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now (starting up, in recovery)
  '53300', // too_many_connections
  '25006', // read_only_sql_transaction: a standby where a primary was expected (mid-promotion)
]);
const UNREACHABLE_MESSAGE =
  /^(Connection is closed|Stream isn't writeable|connect ECONNREFUSED|timeout exceeded when trying to connect|Query read timeout|Connection terminated|Command timed out|All sentinels are unreachable|Too many Cluster redirections|CLUSTERDOWN|READONLY|NOREPLICAS|MASTERDOWN|LOADING)/;

/**
 * Redis or PostgreSQL cannot be reached now (refused, closed, timed out, failing over): the answer
 * is a 503 and a retry, never a 500 and never the end of a process. One rule for the API's error
 * handler, the analytics reads and the start-up retries.
 */
export function storeUnreachable(err: unknown): boolean {
  if (err instanceof DomainError) return err.code === 'UNAVAILABLE';
  if (err instanceof Error && err.name === 'MaxRetriesPerRequestError') return true;
  const code = codeOf(err) ?? '';
  if (UNREACHABLE_CODES.has(code) || code.startsWith('08')) return true;
  return UNREACHABLE_MESSAGE.test(messageOf(err));
}
