import { GraphQLError } from 'graphql';
import type { Logger } from 'pino';
import { maskError as yogaMaskError } from 'graphql-yoga';

/** Codes and messages of a database that cannot be reached right now (as opposed to a bad query). */
const NET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'P1001', 'P1002', 'P1017', 'P2024']);
// 08xxx: connection exceptions; 57P01-57P03: admin shutdown, crash shutdown, cannot connect now.
const SQLSTATE = /^(08\d{3}|57P0[123])$/;
const MESSAGES = /connection terminated|connection refused|econnrefused|econnreset|timeout exceeded when trying to connect|terminating connection due to administrator command|client has encountered a connection error|server closed the connection|cannot use a pool after calling end|database system is (starting up|shutting down)/i;

export function isUnavailable(error: unknown, depth = 0): boolean {
  if (!error || typeof error !== 'object' || depth > 6) return false;
  const e = error as { code?: unknown; message?: unknown; cause?: unknown; originalError?: unknown; errors?: unknown };
  const code = typeof e.code === 'string' ? e.code : '';
  if (NET_CODES.has(code) || SQLSTATE.test(code)) return true;
  if (typeof e.message === 'string' && MESSAGES.test(e.message)) return true;
  if (Array.isArray(e.errors) && e.errors.some((x) => isUnavailable(x, depth + 1))) return true;
  return isUnavailable(e.cause, depth + 1) || isUnavailable(e.originalError, depth + 1);
}

export const RETRY_AFTER_SECONDS = 2;

/**
 * Yoga's error masking, except that a database outage becomes a retryable SERVICE_UNAVAILABLE error
 * (HTTP 503 + Retry-After when nothing else succeeded) instead of an opaque internal error.
 */
export function maskError(error: unknown, message: string, isDev?: boolean): Error {
  if (isUnavailable(error)) {
    return new GraphQLError('The service is briefly unavailable; retry shortly', {
      extensions: {
        code: 'SERVICE_UNAVAILABLE',
        retryable: true,
        http: { status: 503, headers: { 'retry-after': String(RETRY_AFTER_SECONDS) } },
      },
    });
  }
  return yogaMaskError(error, message, isDev);
}

/** At most this much of an error's message goes to the log: a driver's message can quote the values it was given. */
const LOGGED_MESSAGE = 300;

/**
 * maskError, and the error it hides in the structured log: the caller sees only "Unexpected error"
 * (or the retryable outage), the operator sees what happened and where. Only the first line of the
 * message, cut short, and the stack's frames: a database or ORM error can quote the arguments it was
 * called with (license keys among them), and those stay out of the log.
 */
export function loggingMaskError(logger: Logger): typeof maskError {
  return (error, message, isDev) => {
    const masked = maskError(error, message, isDev);
    if (masked !== error) {
      const located = error as { path?: readonly (string | number)[]; originalError?: unknown };
      const original = (located.originalError ?? error) as { name?: string; code?: unknown; message?: unknown; stack?: unknown };
      const firstLine = String(original.message ?? original).split('\n', 1)[0]!.slice(0, LOGGED_MESSAGE);
      const frames = typeof original.stack === 'string' ? original.stack.split('\n').filter((l) => /^\s+at /.test(l)).slice(0, 12).join('\n') : undefined;
      const outage = (masked as GraphQLError).extensions?.code === 'SERVICE_UNAVAILABLE';
      logger[outage ? 'warn' : 'error'](
        { path: located.path?.join('.'), error: { type: original.name, code: typeof original.code === 'string' ? original.code : undefined, message: firstLine, stack: frames } },
        outage ? 'request failed: the database is unavailable' : 'request failed with an unexpected error',
      );
    }
    return masked;
  };
}
