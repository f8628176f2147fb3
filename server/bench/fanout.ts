/**
 * Event fan-out: N graphql-ws subscribers of one tenant's `activity` feed, events raised through
 * createProduct. Two phases: a burst of M events back to back (throughput: deliveries per second), then
 * M events paced at --rate per second (latency: mutation sent -> event received by a subscriber,
 * p50/p99, below saturation). Server and clients share this process, so the numbers are a floor.
 *
 *   tsx bench/fanout.ts [--subscribers 1000] [--events 100] [--rate 5] [--postgres] [--redis]
 */
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { openDatabase } from '@tessera/db/database';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { buildApp } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { createTenant } from '../src/modules/tenants/service.ts';
import { freshPostgres } from '../test/harness.ts';

const { values } = parseArgs({
  options: {
    subscribers: { type: 'string', default: '1000' },
    events: { type: 'string', default: '100' },
    rate: { type: 'string', default: '5' },
    postgres: { type: 'boolean', default: false },
    redis: { type: 'boolean', default: false },
  },
});
const SUBSCRIBERS = Number(values.subscribers);
const EVENTS = Number(values.events);
const RATE = Number(values.rate);

const fresh = values.postgres ? await freshPostgres(process.env.TEST_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres') : null;
const db = fresh ? await openDatabase({ url: fresh.url, poolSize: 20 }) : await openDatabase({ dataDir: 'memory://' });
const env = { NODE_ENV: 'test', ...(values.redis ? { REDIS_URL: process.env.REDIS_URL || 'redis://127.0.0.1:6379' } : {}) };
const app = await buildApp({ config: { ...loadConfig(env), seedDemo: false }, db, busPrefix: `bench-${randomBytes(4).toString('hex')}` });
await new Promise<void>((resolve) => app.server.listen(0, '127.0.0.1', resolve));
const url = `ws://127.0.0.1:${(app.server.address() as AddressInfo).port}/graphql`;
const { adminToken } = await createTenant({ app: app.deps, prisma: app.deps.prisma, actor: { kind: 'anonymous' }, requestId: 'bench' }, { slug: 'bench' });

const sentAt = new Map<string, number>();
const latencies: number[] = [];
let delivered = 0;
let lastDelivery = 0;
const clients: ReturnType<typeof createClient>[] = [];
// Ramp up in batches, as a fleet of consoles would connect over time, not in one instant.
for (let i = 0; i < SUBSCRIBERS; i += 50) {
  const batch = Array.from({ length: Math.min(50, SUBSCRIBERS - i) }, () => {
    let connected: () => void = () => {};
    const ready = new Promise<void>((r) => (connected = r));
    const client = createClient({
      url,
      webSocketImpl: WebSocket,
      lazy: false,
      retryAttempts: 0,
      connectionParams: { authorization: `Bearer ${adminToken}` },
      on: { connected: () => connected() },
    });
    client.subscribe<{ activity: { payload: { code: string } } }>(
      { query: 'subscription { activity(filter: { types: ["product.created"] }) { payload } }' },
      {
        next: (r) => {
          const now = performance.now();
          const sent = sentAt.get(r.data!.activity.payload.code);
          if (sent !== undefined) latencies.push(now - sent);
          delivered++;
          lastDelivery = now;
        },
        error: (e) => console.error('subscription error', e),
        complete: () => {},
      },
    );
    clients.push(client);
    return ready;
  });
  await Promise.all(batch);
}
// Let every subscription start (they read the chain head once).
await new Promise((r) => setTimeout(r, 1000));

async function raise(code: string) {
  sentAt.set(code, performance.now());
  const res = await app.yoga.fetch('http://bench/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${adminToken}` },
    body: JSON.stringify({ query: 'mutation($i: CreateProductInput!) { createProduct(input: $i) { __typename } }', variables: { i: { name: code, code } } }),
  });
  await res.text();
}

async function drain(expected: number) {
  const deadline = Date.now() + 120_000;
  while (delivered < expected && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
}

const pct = (xs: number[], p: number) => xs[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]?.toFixed(1);

// Phase 1: burst.
const started = performance.now();
for (let i = 0; i < EVENTS; i++) await raise(`burst-${i}`);
await drain(EVENTS * SUBSCRIBERS);
const burstDelivered = delivered;
const burstSeconds = (lastDelivery - started) / 1000;

// Phase 2: paced.
latencies.length = 0;
for (let i = 0; i < EVENTS; i++) {
  const next = performance.now() + 1000 / RATE;
  await raise(`paced-${i}`);
  const wait = next - performance.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
}
await drain(2 * EVENTS * SUBSCRIBERS);
latencies.sort((a, b) => a - b);
console.log(
  JSON.stringify(
    {
      database: db.kind,
      bus: values.redis ? 'redis' : 'memory',
      subscribers: SUBSCRIBERS,
      events: EVENTS,
      burst: { delivered: burstDelivered, expected: EVENTS * SUBSCRIBERS, deliveriesPerSecond: Math.round(burstDelivered / burstSeconds) },
      paced: {
        eventsPerSecond: RATE,
        delivered: delivered - burstDelivered,
        expected: EVENTS * SUBSCRIBERS,
        latencyMs: { p50: pct(latencies, 50), p99: pct(latencies, 99), max: latencies.at(-1)?.toFixed(1) },
      },
    },
    null,
    2,
  ),
);
await Promise.all(clients.map((c) => c.dispose()));
await app.stop();
await db.close();
await fresh?.drop();
process.exit(0);
