import { GraphQLError } from 'graphql';
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
