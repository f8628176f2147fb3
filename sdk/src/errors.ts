/** Every failure the SDK reports: a server LicensingError code, or one of the SDK's own. */
export type TesseraErrorCode =
  | 'LICENSE_NOT_FOUND' | 'LICENSE_EXPIRED' | 'LICENSE_SUSPENDED' | 'LICENSE_REVOKED' | 'LICENSE_NOT_YET_VALID'
  | 'ACTIVATION_LIMIT_REACHED' | 'TOKEN_ALREADY_USED' | 'NOT_ACTIVATED' | 'ACTIVATION_RELEASED'
  | 'FINGERPRINT_MISMATCH' | 'VERSION_NOT_ALLOWED' | 'FEATURE_NOT_ENTITLED'
  | 'ONLINE_ACTIVATION_NOT_ALLOWED' | 'OFFLINE_ACTIVATION_NOT_ALLOWED'
  | 'NO_SEATS_AVAILABLE' | 'LEASE_EXPIRED' | 'LEASE_NOT_FOUND'
  | 'QUOTA_EXCEEDED' | 'IDEMPOTENCY_KEY_REUSED' | 'TICKET_EXPIRED' | 'TICKET_ALREADY_COMMITTED'
  | 'INVALID_SIGNATURE' | 'REQUEST_EXPIRED' | 'RATE_LIMITED'
  // The SDK's own:
  | 'VALIDATION_FAILED' // the server refused the input (ValidationError)
  | 'NETWORK_ERROR' // the server could not be reached, or timed out
  | 'BAD_RESPONSE' // the server answered something that is not a Tessera response
  | 'GRACE_PERIOD_EXPIRED' // offline for longer than the grace period allows
  | 'CLOCK_ROLLBACK' // the system clock is earlier than a time already seen
  | 'WRONG_TOKEN_TYPE' // a signed document of another kind (e.g. a lease token offered as a license)
  | 'STORAGE_FAILED'; // the license state could not be read or written (permissions, disk full)

export class TesseraError extends Error {
  constructor(
    readonly code: TesseraErrorCode,
    message: string,
    readonly fields: { path: string; message: string }[] = [],
    /** How long the server asked to wait before trying again (its Retry-After), when it said. */
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
    this.name = 'TesseraError';
  }

  /** Worth retrying later: the server was not reached or did not answer sensibly. */
  get transient(): boolean {
    return this.code === 'NETWORK_ERROR' || this.code === 'BAD_RESPONSE' || this.code === 'RATE_LIMITED';
  }
}
