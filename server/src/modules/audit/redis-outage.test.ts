import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Database } from '@tessera/db/database';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type App, buildApp } from '../../app.ts';
import { loadConfig } from '../../config.ts';
import { freshPostgres, openTestDatabase, testDatabaseUrl, testEnv } from '../../../test/harness.ts';
import { type Instance, startInstance, stopInstance } from '../../../test/processes.ts';
import { Proxy } from '../../../test/proxy.ts';
import { listen, sleep, subscribe, wsClient, type WsClient } from '../../../test/ws.ts';
import { createLogger } from '../security/log.ts';
import { createTenant } from '../tenants/service.ts';

/*
 * Redis going away under two instances that share a database: each instance reaches the real Redis through
 * a TCP proxy of its own, which the test cuts and restores. Events raised meanwhile are in the audit log;
 * the live feeds of the instance that missed them must catch up once Redis is back, and the outage must be
 * told once in the structured log and in /health.
 */
const redis = new URL(process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379');
const busPrefix = `tessera-test-${randomBytes(6).toString('hex')}`;

interface Node {
  app: App;
  proxy: Proxy;
  logs: { level: number; msg: string }[];
  http: string;
}

let db: Database;
let closeDb: (() => Promise<void>) | undefined;
let a: Node;
let b: Node;
const clients: WsClient[] = [];

async function node(): Promise<Node> {
  const proxy = new Proxy({ host: redis.hostname, port: Number(redis.port || 6379) });
  await proxy.up();
  const logs: Node['logs'] = [];
  const logger = createLogger('info', { write: (line: string) => void logs.push(JSON.parse(line)) });
  const config = { ...loadConfig({ ...testEnv, REDIS_URL: `redis://127.0.0.1:${proxy.port}` }), seedDemo: false };
  const app = await buildApp({ config, db, busPrefix, logger });
  const http = (await listen(app)).replace('ws://', 'http://').replace('/graphql', '');
  return { app, proxy, logs, http };
}

/** Polls until `done` holds (the bus's connection state changes on its own time). */
async function until(done: () => boolean | Promise<boolean>): Promise<void> {
  while (!(await done())) await sleep(20);
}

const connected = (n: Node) => n.app.deps.bus.state().connected;
const health = async (n: Node) => (await fetch(`${n.http}/health`)).json() as Promise<{ status: string; eventBus: { connected: boolean; unreachableSince?: string } }>;
const said = (n: Node, text: string) => n.logs.filter((l) => l.msg.includes(text));

async function gql(app: App, token: string, query: string) {
  const res = await app.yoga.fetch('http://tessera.test/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query }),
  });
  const body = (await res.json()) as { data: any; errors?: unknown };
  if (body.errors) throw new Error(JSON.stringify(body.errors));
  return body.data;
}

/** A tenant, and an activity feed of it on `on` that is known to be live (an event from A reached it). */
async function liveFeed(on: Node) {
  const ctx = { app: a.app.deps, prisma: a.app.deps.prisma, actor: { kind: 'anonymous' as const }, requestId: 'test' };
  const t = await createTenant(ctx, { slug: `o-${randomBytes(4).toString('hex')}` });
  const conn = wsClient(await listen(on.app), t.adminToken);
  clients.push(conn);
  return { token: t.adminToken, feed: await activity(conn, t.adminToken) };
}

type Feed = ReturnType<typeof subscribe<{ type: string; payload: { name?: string } }>>;

/** An activity feed on `conn`, once live: it starts from the chain head it reads when it starts, so events from A until one reaches it. */
async function activity(conn: WsClient, token: string): Promise<Feed> {
  const feed = subscribe<{ type: string; payload: { name?: string } }>(conn.client, `subscription { activity { type payload } }`, {}, (d) => d.activity);
  for (let i = 0; !feed.items.some((x) => x.payload.name?.startsWith('Probe')); i++) {
    await gql(a.app, token, `mutation { createCustomer(input: { name: "Probe ${i}" }) { __typename } }`);
    await sleep(100);
  }
  return feed;
}

const created = (feed: { items: { type: string; payload: { name?: string } }[] }, name: string) =>
  feed.items.some((x) => x.type === 'customer.created' && x.payload.name === name);

describe('Redis unreachable under two instances', () => {
  beforeAll(async () => {
    ({ db, close: closeDb } = await openTestDatabase(10));
    a = await node();
    b = await node();
    await until(() => connected(a) && connected(b));
  });

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.dispose()));
    for (const n of [a, b]) {
      await n?.app.stop();
      await n?.proxy.down();
    }
    await closeDb?.();
  });

  it('an instance cut from Redis reports it once (log and /health), and its feeds catch up from the audit log once Redis is back', async () => {
    const { token, feed } = await liveFeed(b);
    expect((await health(b)).status).toBe('ok');

    await b.proxy.down();
    await until(() => !connected(b));
    const during = await health(b);
    expect(during.status).toBe('degraded');
    expect(during.eventBus.connected).toBe(false);
    expect(during.eventBus.unreachableSince).toBeTruthy();
    // Raised on A while B cannot hear it: it is in the audit log only.
    await gql(a.app, token, `mutation { createCustomer(input: { name: "While B was cut off" }) { __typename } }`);

    await b.proxy.up();
    await until(() => connected(b));
    await feed.until((xs) => created({ items: xs }, 'While B was cut off'), 20_000);
    expect((await health(b)).status).toBe('ok');
    // Once per outage, whatever the number of reconnection attempts.
    expect(said(b, 'event bus: Redis is unreachable')).toHaveLength(1);
    expect(said(b, 'event bus: Redis is unreachable')[0]!.level).toBe(40);
    expect(said(b, 'event bus: Redis is reachable again')).toHaveLength(1);
  });

  it("an instance that could not publish serves its own feeds meanwhile, and has the others read what they missed once Redis is back", async () => {
    const { token, feed } = await liveFeed(b);
    const conn = wsClient(await listen(a.app), token);
    clients.push(conn);
    const own = await activity(conn, token);

    await a.proxy.down();
    await until(() => !connected(a));
    await gql(a.app, token, `mutation { createCustomer(input: { name: "While A was cut off" }) { __typename } }`);
    // A's own subscribers hear it at once, Redis or not.
    await own.until((xs) => created({ items: xs }, 'While A was cut off'));

    await a.proxy.up();
    await until(() => connected(a));
    await feed.until((xs) => created({ items: xs }, 'While A was cut off'), 20_000);
    expect(feed.items.filter((x) => created({ items: [x] }, 'While A was cut off'))).toHaveLength(1);
  });
});

describe.each([
  ['hangs up on every connection', (s: Socket) => s.destroy()],
  ['accepts connections and never answers', () => {}],
])('a server started with REDIS_URL where "Redis" %s', (_, onConnection) => {
  let redisLike: Server;
  const attempts: Socket[] = [];
  let instance: Instance | undefined;
  let dataDir: string;
  let fresh: Awaited<ReturnType<typeof freshPostgres>> | undefined;

  beforeAll(async () => {
    if (testDatabaseUrl) fresh = await freshPostgres(testDatabaseUrl);
    // Every connection attempt of the server's Redis clients is counted here.
    redisLike = createServer((s) => {
      attempts.push(s);
      onConnection(s);
    });
    await new Promise<void>((resolve) => redisLike.listen(0, '127.0.0.1', resolve));
    dataDir = mkdtempSync(path.join(tmpdir(), 'tessera-redis-'));
  });

  afterAll(async () => {
    if (instance) await stopInstance(instance);
    for (const s of attempts) s.destroy();
    redisLike.close();
    rmSync(dataDir, { recursive: true, force: true });
    await fresh?.drop();
  });

  it('starts, serves without waiting on Redis, says so once in the structured log and in /health, and prints no raw Redis errors', async () => {
    const port = (redisLike.address() as { port: number }).port;
    const database: Record<string, string> = fresh ? { DATABASE_URL: fresh.url, TESSERA_DEMO: '1' } : {};
    instance = await startInstance({ ...database, TESSERA_DATA_DIR: dataDir, HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info', REDIS_URL: `redis://127.0.0.1:${port}` });
    const url = instance.url.replace('localhost', '127.0.0.1');
    const token = /API token \(OWNER, shown once\): (tsr_\S+)/.exec(instance.output())![1]!;
    // The demo's events were published at start; a write now publishes more, after its rate limits
    // (kept in Redis) were checked: the in-memory ones answer instead, without waiting for Redis.
    const res = await fetch(`${url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query: 'mutation { createCustomer(input: { name: "No Redis" }) { __typename } }' }),
      signal: AbortSignal.timeout(20_000),
    });
    expect(((await res.json()) as { data: { createCustomer: { __typename: string } } }).data.createCustomer.__typename).toBe('Customer');
    // More reconnection attempts later, the process is still there and has said it once.
    const seen = attempts.length;
    await until(() => attempts.length >= seen + 2);
    const h = await fetch(`${url}/health`);
    expect(h.status).toBe(200);
    expect(await h.json()).toMatchObject({ status: 'degraded', database: fresh ? 'postgres' : 'pglite', eventBus: { transport: 'redis', connected: false } });
    expect(instance.child.exitCode).toBeNull();
    const lines = instance.output().split('\n');
    const told = lines.filter((l) => l.includes('event bus: Redis is unreachable'));
    expect(told).toHaveLength(1);
    expect(JSON.parse(told[0]!)).toMatchObject({ level: 40, redis: `127.0.0.1:${port}` });
    expect(lines.filter((l) => l.startsWith('redis:'))).toEqual([]);
  }, 120_000);
});
