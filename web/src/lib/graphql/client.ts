import { Client, CombinedError, fetchExchange, subscriptionExchange, type OperationResult } from '@urql/core';
import { createClient as createWsClient, type Client as WsClient } from 'graphql-ws';
import type { Failure } from './payload';
import { connection as sharedConnection, type Connection } from '../connection.svelte';

/** Waits 1, 2, 4, 8 s, then 10 s between attempts (+-25 %), however long the server is away. */
const MAX_RETRY_WAIT_MS = 10_000;
function retryWait(retries: number): Promise<void> {
  const ms = Math.min(MAX_RETRY_WAIT_MS, 1000 * 2 ** retries) * (0.75 + Math.random() / 2);
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function closeCode(event: unknown): number | null {
  const code = typeof event === 'object' && event !== null ? (event as { code?: unknown }).code : undefined;
  return typeof code === 'number' ? code : null;
}

function wsUrl(url: string): string {
  const base = new URL(url, window.location.href);
  base.protocol = base.protocol === 'https:' ? 'wss:' : 'ws:';
  return base.href;
}

/**
 * Subscriptions go over graphql-ws on the same origin. Signed in with the HttpOnly session cookie,
 * which JavaScript cannot read, the browser sends the cookie on the WebSocket upgrade and the server
 * accepts it from its own origin (or TESSERA_CORS_ORIGINS); with a bearer token (scripts, tests) the
 * token goes in `connectionParams.authorization`, as the contract describes. The socket is lazy: it
 * closes with the last subscription (signing out leaves the app's pages), so the next one connects
 * with whatever cookie the browser holds then. A lost socket is retried for as long as the page is
 * open, and `connection` tells the pages whether the feeds are live, so they never claim to be.
 */
export function createClient(url = '/graphql', token?: string, connection: Connection = sharedConnection): Client {
  let ws: WsClient | null = null;
  const socket = () =>
    (ws ??= createWsClient({
      url: wsUrl(url),
      lazy: true,
      retryAttempts: Infinity,
      retryWait,
      // 4403: the token or session was refused; retrying cannot help.
      shouldRetry: (e) => closeCode(e) !== 4403,
      on: {
        connecting: (isRetry) => connection.connecting(isRetry),
        connected: (_socket, _payload, wasRetry) => connection.connected(wasRetry),
        closed: (event) => connection.closed(closeCode(event)),
      },
      connectionParams: token ? { authorization: `Bearer ${token}` } : undefined,
    }));
  return new Client({
    url,
    // Every page load asks the server; the console shows the truth, not a cache.
    requestPolicy: 'network-only',
    fetchOptions: token ? { headers: { authorization: `Bearer ${token}` } } : { credentials: 'same-origin' },
    exchanges: [
      subscriptionExchange({
        forwardSubscription(request) {
          const input = { ...request, query: request.query ?? '' };
          return {
            subscribe(sink) {
              const unsubscribe = socket().subscribe(input, sink);
              return { unsubscribe };
            },
          };
        },
      }),
      fetchExchange,
    ],
  });
}

export const client = createClient();

/** Thrown by `data()` so load functions and forms can show the server's message. */
export class RequestError extends Error {
  constructor(
    message: string,
    readonly code: string | null,
  ) {
    super(message);
    this.name = 'RequestError';
  }
}

export function errorCode(error: CombinedError | undefined): string | null {
  const code = error?.graphQLErrors.find((e) => e.extensions?.code)?.extensions?.code;
  return typeof code === 'string' ? code : null;
}

/** The message to show for a failed request; no error at all means the server sent no data. */
export function errorMessage(error: CombinedError | undefined): string {
  if (!error) return 'No answer from the server.';
  if (error.networkError) return 'The server could not be reached. Check your connection and try again.';
  const code = errorCode(error);
  if (code === 'FORBIDDEN') return 'Your role does not allow this.';
  if (code === 'UNAUTHENTICATED') return 'Your session has ended. Sign in again.';
  return error.graphQLErrors[0]?.message ?? error.message;
}

/** A request that brought no payload (network or GraphQL error, no data), as a form's Failure. */
export function requestFailure(error: CombinedError | undefined): Failure {
  return { message: errorMessage(error), fields: {} };
}

/** The data of a result, or a RequestError carrying the server's message. */
export function data<T>(result: OperationResult<T>): T {
  if (result.error) throw new RequestError(errorMessage(result.error), errorCode(result.error));
  if (!result.data) throw new RequestError('The server sent no data.', null);
  return result.data;
}
