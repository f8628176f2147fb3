/** Domain failures. Each maps to a GraphQL union member; resolvers never catch them. */

export const LICENSING_ERROR_CODES = [
  'LICENSE_NOT_FOUND',
  'LICENSE_EXPIRED',
  'LICENSE_SUSPENDED',
  'LICENSE_REVOKED',
  'LICENSE_NOT_YET_VALID',
  'ACTIVATION_LIMIT_REACHED',
  'TOKEN_ALREADY_USED',
  'NOT_ACTIVATED',
  'ACTIVATION_RELEASED',
  'FINGERPRINT_MISMATCH',
  'VERSION_NOT_ALLOWED',
  'FEATURE_NOT_ENTITLED',
  'ONLINE_ACTIVATION_NOT_ALLOWED',
  'OFFLINE_ACTIVATION_NOT_ALLOWED',
  'NO_SEATS_AVAILABLE',
  'LEASE_EXPIRED',
  'LEASE_NOT_FOUND',
  'QUOTA_EXCEEDED',
  'IDEMPOTENCY_KEY_REUSED',
  'TICKET_EXPIRED',
  'TICKET_ALREADY_COMMITTED',
  'INVALID_SIGNATURE',
  'REQUEST_EXPIRED',
  'RATE_LIMITED',
] as const;
export type LicensingErrorCode = (typeof LICENSING_ERROR_CODES)[number];

export class LicensingError extends Error {
  constructor(
    readonly code: LicensingErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'LicensingError';
  }
}

export interface FieldProblem {
  path: string;
  message: string;
}

export class ValidationError extends Error {
  readonly fields: FieldProblem[];
  constructor(fields: FieldProblem[] | string, message?: string) {
    const list = typeof fields === 'string' ? [{ path: '', message: fields }] : fields;
    super(message ?? list.map((f) => (f.path ? `${f.path}: ${f.message}` : f.message)).join('; '));
    this.name = 'ValidationError';
    this.fields = list;
  }

  static field(path: string, message: string) {
    return new ValidationError([{ path, message }]);
  }
}

export class NotFoundError extends Error {
  constructor(what: string) {
    super(`${what} not found`);
    this.name = 'NotFoundError';
  }
}

/** The request is well-formed but clashes with current state (duplicate code, illegal transition). */
export class ConflictError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConflictError';
  }
}

export interface RowProblem {
  line: number;
  /** The column (CSV) or field (JSON lines) at fault; null or absent when it is the line as a whole. */
  field?: string | null;
  /** What is wrong, in words, starting with the field when there is one ("expiresAt: is not ..."). */
  message: string;
}

/** A bulk operation was refused as a whole; every problem is listed with its line. */
export class ImportError extends Error {
  constructor(readonly rows: RowProblem[]) {
    const lines = [...new Set(rows.map((r) => r.line))];
    const where = lines.length === 1 ? `line ${lines[0]}` : `${lines.length} lines`;
    super(`Nothing was imported: ${rows.length} problem${rows.length === 1 ? '' : 's'} on ${where}.`);
    this.name = 'ImportError';
  }
}
