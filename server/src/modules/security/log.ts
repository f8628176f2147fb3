import { pino, type Logger } from 'pino';
import type { Plugin } from 'graphql-yoga';
import { loggedError, retryReason } from './availability.ts';

/**
 * Structured JSON logs. Secrets never reach them: credentials are redacted by path wherever they
 * appear, and license keys are shortened to their first group (`keyHint`) before logging.
 */
export function createLogger(level = 'info', destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'tessera' },
      redact: {
        paths: [
          'authorization',
          'cookie',
          'password',
          'token',
          'secret',
          'key',
          '*.authorization',
          '*.cookie',
          '*.password',
          '*.token',
          '*.secret',
          '*.key',
          'headers["set-cookie"]',
          'variables',
        ],
        censor: '[redacted]',
      },
    },
    destination,
  );
}

/** `LIC-ABCD-…`: enough to tell keys apart in a log, useless to an attacker. */
export function keyHint(key: unknown): string {
  if (typeof key !== 'string') return '';
  return `${key.slice(0, 8)}…`;
}

interface RequestLog {
  started: number;
  operation?: string;
}

/** Requests slower than this are logged at info even when they succeed. */
const SLOW_MS = 1000;

/**
 * One log line per GraphQL request: request id, operation name, duration, HTTP status. Fast
 * successful requests are logged at debug (a license server answers thousands a second: set
 * LOG_LEVEL=debug for a full access log); failed (status >= 400) or slow ones at info/warn.
 */
export function requestLogPlugin(logger: Logger): Plugin {
  const requests = new WeakMap<Request, RequestLog>();
  return {
    onRequest({ request }) {
      requests.set(request, { started: performance.now() });
    },
    onParams({ request, params }) {
      const entry = requests.get(request);
      if (entry) entry.operation = params.operationName ?? (params.query ? undefined : 'persisted');
    },
    onResponse({ request, response }) {
      const entry = requests.get(request);
      if (!entry) return;
      const ms = Math.round((performance.now() - entry.started) * 10) / 10;
      const level = response.status >= 500 ? 'warn' : response.status >= 400 || ms >= SLOW_MS ? 'info' : 'debug';
      if (!logger.isLevelEnabled(level)) return;
      const url = new URL(request.url);
      logger[level](
        {
          requestId: response.headers.get('x-request-id') ?? undefined,
          method: request.method,
          path: url.pathname,
          operation: entry.operation,
          status: response.status,
          ms,
        },
        'request',
      );
    },
  };
}

/**
 * A background job's failure (a sweep, the sealer, the webhook dispatcher), in the structured log: at
 * `warn` when the database is unreachable or too busy (the job runs again), else at `error`; the error as
 * requests' are logged (first line, frames). Without a logger (the CLI), on stderr.
 */
export function logFailure(app: { logger?: Logger }, what: string, err: unknown, fields: Record<string, unknown> = {}): void {
  const error = loggedError(err);
  if (!app.logger) {
    console.error(`${what}: ${error.message}`);
    return;
  }
  app.logger[retryReason(err) ? 'warn' : 'error']({ ...fields, error }, what);
}
