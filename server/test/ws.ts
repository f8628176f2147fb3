import type { AddressInfo } from 'node:net';
import { type Client, createClient } from 'graphql-ws';
import WebSocket from 'ws';
import type { App } from '../src/app.ts';

/** Starts the app's HTTP server on a free port; returns the graphql-ws URL. */
export async function listen(app: App): Promise<string> {
  if (!app.server.listening) await new Promise<void>((resolve) => app.server.listen(0, '127.0.0.1', resolve));
  const { port } = app.server.address() as AddressInfo;
  return `ws://127.0.0.1:${port}/graphql`;
}

export interface WsClient {
  client: Client;
  /** Resolves with the close code when the socket closes. */
  closed: Promise<number>;
  dispose(): Promise<void>;
}

/** `headers` go on the upgrade request, as a browser sends Cookie and Origin there. */
export function wsClient(url: string, token: string | null, headers?: Record<string, string>): WsClient {
  let onClose: (code: number) => void = () => {};
  const closed = new Promise<number>((resolve) => (onClose = resolve));
  const client = createClient({
    url,
    webSocketImpl: headers
      ? class extends WebSocket {
          constructor(address: string, protocols?: string | string[]) {
            super(address, protocols, { headers });
          }
        }
      : WebSocket,
    retryAttempts: 0,
    lazy: false,
    connectionParams: token ? { authorization: `Bearer ${token}` } : {},
    on: { closed: (e) => onClose((e as { code: number }).code) },
    onNonLazyError: () => {},
  });
  return { client, closed, dispose: () => Promise.resolve(client.dispose()) };
}

/** A running subscription that collects what it receives. */
export interface Subscription<T> {
  items: T[];
  errors: unknown[];
  done: boolean;
  /** Waits until `predicate(items)` holds (or fails after `ms`). */
  until(predicate: (items: T[]) => boolean, ms?: number): Promise<T[]>;
  stop(): void;
}

export function subscribe<T = any>(client: Client, query: string, variables: Record<string, unknown> = {}, pick: (data: any) => T = (d) => d): Subscription<T> {
  const sub: Subscription<T> = {
    items: [],
    errors: [],
    done: false,
    async until(predicate, ms = 10_000) {
      const deadline = Date.now() + ms;
      while (!predicate(sub.items)) {
        if (sub.errors.length) throw new Error(`subscription failed: ${JSON.stringify(sub.errors)}`);
        if (Date.now() > deadline) throw new Error(`timed out; received ${JSON.stringify(sub.items)}`);
        await new Promise((r) => setTimeout(r, 10));
      }
      return sub.items;
    },
    stop: () => {},
  };
  sub.stop = client.subscribe(
    { query, variables },
    {
      next: (r) => {
        if (r.errors) sub.errors.push(r.errors);
        else sub.items.push(pick(r.data));
      },
      error: (e) => sub.errors.push(e),
      complete: () => (sub.done = true),
    },
  );
  return sub;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs one query or mutation over the socket; resolves with its single result (errors included). */
export function execute<T = any>(client: Client, query: string, variables: Record<string, unknown> = {}): Promise<{ data?: T; errors?: { message: string; extensions?: { code?: string } }[] }> {
  return new Promise((resolve, reject) => {
    let result: { data?: T; errors?: { message: string; extensions?: { code?: string } }[] } | undefined;
    client.subscribe(
      { query, variables },
      {
        next: (r) => (result = r as typeof result),
        error: (e) => (Array.isArray(e) ? resolve({ errors: e as never }) : reject(e)),
        complete: () => (result ? resolve(result) : reject(new Error('completed without a result'))),
      },
    );
  });
}
