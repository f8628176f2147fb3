import { Client, CombinedError, fetchExchange, subscriptionExchange, type OperationResult } from '@urql/core';
import { createClient as createWsClient, type Client as WsClient } from 'graphql-ws';

let ws: WsClient | null = null;

function wsUrl(): string {
  const { protocol, host } = window.location;
  return `${protocol === 'https:' ? 'wss:' : 'ws:'}//${host}/graphql`;
}

/** The socket is opened on the first subscription only; the session cookie travels with the upgrade. */
function socket(): WsClient {
  ws ??= createWsClient({ url: wsUrl(), lazy: true, retryAttempts: 5 });
  return ws;
}

export function createClient(url = '/graphql'): Client {
  return new Client({
    url,
    // Every page load asks the server; the console shows the truth, not a cache.
    requestPolicy: 'network-only',
    preferGetMethod: false,
    fetchOptions: { credentials: 'same-origin' },
    exchanges: [
      fetchExchange,
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

export function errorMessage(error: CombinedError): string {
  if (error.networkError) return 'The server could not be reached. Check your connection and try again.';
  const code = errorCode(error);
  if (code === 'FORBIDDEN') return 'Your role does not allow this.';
  if (code === 'UNAUTHENTICATED') return 'Your session has ended. Sign in again.';
  return error.graphQLErrors[0]?.message ?? error.message;
}

/** The data of a result, or a RequestError carrying the server's message. */
export function data<T>(result: OperationResult<T>): T {
  if (result.error) throw new RequestError(errorMessage(result.error), errorCode(result.error));
  if (!result.data) throw new RequestError('The server sent no data.', null);
  return result.data;
}
