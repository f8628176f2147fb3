import { GraphQLError } from 'graphql';
import type { Logger } from 'pino';
import { maskError as yogaMaskError } from 'graphql-yoga';

/** Codes and messages of a database that cannot be reached right now (as opposed to a bad query). */
const NET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'P1001', 'P1002', 'P1017', 'P2024']);
// 08xxx: connection exceptions; 57P01-57P03: admin shutdown, crash shutdown, cannot connect now.
const SQLSTATE = /^(08\d{3}|57P0[123])$/;
// A raw query (P2010) reports a refused connection in its message only ("Can't reach database server").
const MESSAGES = /connection terminated|connection refused|can't reach database server|econnrefused|econnreset|timeout exceeded when trying to connect|terminating connection due to administrator command|client has encountered a connection error|server closed the connection|cannot use a pool after calling end|database system is (starting up|shutting down)/i;

/**
 * Codes and messages of a database too busy to finish the work in time: a transaction that ran past its
 * time limit or waited too long to start (Prisma's P2028 says which in its message; its other P2028s are
 * misuse, not load), and a deadlock or serialization failure still there after the retries (P2034 is
 * Prisma's word for both). PostgreSQL rolled the work back; the same request may well pass a moment later.
 */
const BUSY_CODES = new Set(['P2034', '40P01', '40001']);
const BUSY_MESSAGES = /expired transaction|timeout for this transaction was|unable to start a transaction in the given time/i;

type Cause = { code?: unknown; originalCode?: unknown; message?: unknown; cause?: unknown; originalError?: unknown; errors?: unknown };

/** Whether `matches` holds for the error or anything it wraps (cause, originalError, an aggregate's errors). */
function anyCause(error: unknown, matches: (code: string, message: string) => boolean, depth = 0): boolean {
  if (!error || typeof error !== 'object' || depth > 6) return false;
  const e = error as Cause;
  // A driver adapter's error (Prisma) carries PostgreSQL's SQLSTATE as originalCode.
  const code = typeof e.code === 'string' ? e.code : typeof e.originalCode === 'string' ? e.originalCode : '';
  if (matches(code, typeof e.message === 'string' ? e.message : '')) return true;
  if (Array.isArray(e.errors) && e.errors.some((x) => anyCause(x, matches, depth + 1))) return true;
  return anyCause(e.cause, matches, depth + 1) || anyCause(e.originalError, matches, depth + 1);
}

export function isUnavailable(error: unknown): boolean {
  return anyCause(error, (code, message) => NET_CODES.has(code) || SQLSTATE.test(code) || MESSAGES.test(message));
}

export function isBusy(error: unknown): boolean {
  return anyCause(error, (code, message) => BUSY_CODES.has(code) || (code === 'P2028' && BUSY_MESSAGES.test(message)));
}

/**
 * Text the database cannot store as given: NUL (22021 in text, 22P05 in jsonb) or a lone UTF-16
 * surrogate (refused in jsonb; Prisma refuses it before sending). Services refuse such input field by
 * field (common/validate.ts); this catches what reaches the database without them (a search argument, say).
 */
const TEXT_CODES = new Set(['22021', '22P05']);
const TEXT_MESSAGES = /invalid byte sequence for encoding "UTF8": 0x00|unsupported Unicode escape sequence|surrogate/i;

export function isUnstorableText(error: unknown): boolean {
  return anyCause(error, (code, message) => TEXT_CODES.has(code) || TEXT_MESSAGES.test(message));
}

export const RETRY_AFTER_SECONDS = 2;

/**
 * Why a failed request may be sent again as it is: the database could not be reached, or was too busy to
 * finish the work in time. Either way PostgreSQL rolled the work back. `message` is the caller's,
 * `logged` the operator's.
 */
export function retryReason(error: unknown): { message: string; logged: string } | undefined {
  if (isUnavailable(error)) return { message: 'The service is briefly unavailable; retry shortly', logged: 'request failed: the database is unavailable' };
  if (isBusy(error)) return { message: 'The service is busy; retry shortly', logged: 'request failed: the database was too busy to finish it in time' };
  return undefined;
}

const retryable = (message: string) =>
  new GraphQLError(message, {
    extensions: {
      code: 'SERVICE_UNAVAILABLE',
      retryable: true,
      http: { status: 503, headers: { 'retry-after': String(RETRY_AFTER_SECONDS) } },
    },
  });

/**
 * Yoga's error masking, except that a database outage, or a database too busy to finish the work in time,
 * becomes a retryable SERVICE_UNAVAILABLE error (HTTP 503 + Retry-After when nothing else succeeded)
 * instead of an opaque internal error. Either way nothing was written.
 */
export function maskError(error: unknown, message: string, isDev?: boolean): Error {
  const retry = retryReason(error);
  if (retry) return retryable(retry.message);
  if (isUnstorableText(error)) {
    return new GraphQLError('Text in the request contains a NUL character or an unpaired UTF-16 surrogate', { extensions: { code: 'BAD_USER_INPUT' } });
  }
  return yogaMaskError(error, message, isDev);
}

/** At most this much of an error's message goes to the log: a driver's message can quote the values it was given. */
const LOGGED_MESSAGE = 300;

/**
 * What the log shows of an error it hides from the caller: its type and code, the first line of its
 * message, cut short, and its stack's frames. A database or ORM error can quote the arguments it was
 * called with (license keys among them), and those stay out of the log.
 */
export function loggedError(error: unknown): { type?: string; code?: string; message: string; stack?: string } {
  const e = error as { name?: string; code?: unknown; message?: unknown; stack?: unknown };
  // Prisma's messages open with a blank line.
  const firstLine = (String(e?.message ?? e).split('\n').find((l) => l.trim()) ?? '').trim().slice(0, LOGGED_MESSAGE);
  const frames = typeof e?.stack === 'string' ? e.stack.split('\n').filter((l) => /^\s+at /.test(l)).slice(0, 12).join('\n') : undefined;
  return { type: e?.name, code: typeof e?.code === 'string' ? e.code : undefined, message: firstLine, stack: frames };
}

/**
 * A failed request's error in the structured log (loggedError): at `warn`, saying why it may be retried,
 * when the database is unreachable or too busy; else at `error`. `prefix` opens the message.
 */
export function logFailedRequest(logger: Logger, error: unknown, fields: Record<string, unknown>, prefix = ''): void {
  const retry = retryReason(error);
  logger[retry ? 'warn' : 'error']({ ...fields, error: loggedError(error) }, `${prefix}${retry ? retry.logged : 'request failed with an unexpected error'}`);
}

/**
 * maskError, and the error it hides in the structured log (logFailedRequest): the caller sees only
 * "Unexpected error" (or the retryable outage), the operator sees what happened and where.
 */
export function loggingMaskError(logger: Logger): typeof maskError {
  return (error, message, isDev) => {
    const masked = maskError(error, message, isDev);
    if (masked !== error) {
      const located = error as { path?: readonly (string | number)[]; originalError?: unknown };
      if ((masked as GraphQLError).extensions?.code === 'BAD_USER_INPUT') return masked;
      logFailedRequest(logger, located.originalError ?? error, { path: located.path?.join('.') });
    }
    return masked;
  };
}
