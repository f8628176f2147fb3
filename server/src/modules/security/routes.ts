import type { ServerResponse } from 'node:http';
import type { Plugin } from 'graphql-yoga';
import type { Logger } from 'pino';
import { logFailedRequest, RETRY_AFTER_SECONDS, retryReason } from './availability.ts';

/** One request to a route served beside /graphql. */
export interface RouteCall {
  request: Request;
  url: URL;
  /**
   * Ends a streamed body that failed after its headers went out: logs the error and cuts the
   * connection, so the client sees a broken transfer, never a file that looks complete but is short.
   */
  failStream(controller: ReadableStreamDefaultController<Uint8Array>, error: unknown): void;
}

/** A JSON answer of a route beside /graphql, never cached. */
export const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers } });

/**
 * The answer of a route whose work failed, like /graphql's for the same error: a database outage, or a
 * database too busy to finish in time, is a retryable 503 SERVICE_UNAVAILABLE with Retry-After; anything
 * else a 500 "Unexpected error.". The caller never sees the error itself (a Prisma message names the
 * database's host and port, a stack the server's files); the log gets it as loggingMaskError logs it.
 */
export function failedRoute(logger: Logger, error: unknown, route: string): Response {
  logFailedRequest(logger, error, { route });
  const retry = retryReason(error);
  if (retry) {
    return json(503, { errors: [{ message: retry.message, extensions: { code: 'SERVICE_UNAVAILABLE', retryable: true } }] }, { 'retry-after': String(RETRY_AFTER_SECONDS) });
  }
  return json(500, { errors: [{ message: 'Unexpected error.', extensions: { code: 'INTERNAL_SERVER_ERROR' } }] });
}

/**
 * Serves `handle` at `path` through yoga's onRequest, so in-process tests (yoga.fetch) and the HTTP
 * server share one way in. What an onRequest hook throws bypasses yoga's error masking and reaches
 * @whatwg-node/server, which answers 500 with the error's stack: every failure is answered here instead.
 */
export function routePlugin(logger: Logger, path: string, handle: (call: RouteCall) => Promise<Response>): Plugin {
  return {
    async onRequest({ request, url, endResponse, serverContext }) {
      if (url.pathname !== path) return;
      // The Node response, when the request came through the HTTP server (not yoga.fetch).
      const res = (serverContext as { res?: ServerResponse } | undefined)?.res;
      const call: RouteCall = {
        request,
        url,
        failStream(controller, error) {
          logFailedRequest(logger, error, { route: path }, 'streamed response cut short: ');
          if (res) {
            // @whatwg-node/server leaves a response whose stream errored open (the client would wait for
            // ever) and prints the error: cut the connection, then end the stream quietly.
            res.destroy();
            controller.close();
          } else controller.error(new Error('The response was cut short'));
        },
      };
      endResponse(await handle(call).catch((err: unknown) => failedRoute(logger, err, path)));
    },
  };
}
