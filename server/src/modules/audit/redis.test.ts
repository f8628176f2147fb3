import { randomBytes } from 'node:crypto';
import type { Database } from '@tessera/db/database';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type App, buildApp } from '../../app.ts';
import { loadConfig } from '../../config.ts';
import { openTestDatabase, testEnv } from '../../../test/harness.ts';
import { listen, subscribe, wsClient, type WsClient } from '../../../test/ws.ts';
import { createTenant } from '../tenants/service.ts';

/*
 * Two server instances on one database (one PGlite shared in-process, or one PostgreSQL database), each
 * with its own Redis connections: an event raised on A must reach a graphql-ws subscriber of B.
 */
const redisUrl = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
// A channel prefix of our own, so parallel runs sharing the Redis never see each other's events.
const busPrefix = `tessera-test-${randomBytes(6).toString('hex')}`;

let db: Database;
let closeDb: (() => Promise<void>) | undefined;
let a: App;
let b: App;
const clients: WsClient[] = [];

beforeAll(async () => {
  ({ db, close: closeDb } = await openTestDatabase(10));
  const config = { ...loadConfig({ ...testEnv, REDIS_URL: redisUrl }), seedDemo: false };
  a = await buildApp({ config, db, busPrefix });
  b = await buildApp({ config, db, busPrefix });
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.dispose()));
  await a?.stop();
  await b?.stop();
  await closeDb?.();
});

async function gql(app: App, token: string, query: string, variables: Record<string, unknown> = {}) {
  const res = await app.yoga.fetch('http://tessera.test/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await res.json()) as { data: any; errors?: unknown };
  if (body.errors) throw new Error(JSON.stringify(body.errors));
  return body.data;
}

describe('events across instances through Redis', () => {
  it('an event raised on instance A reaches a graphql-ws subscriber on instance B, and only of its tenant', async () => {
    const ctx = { app: a.deps, prisma: a.deps.prisma, actor: { kind: 'anonymous' as const }, requestId: 'test' };
    const t = await createTenant(ctx, { slug: `r-${randomBytes(4).toString('hex')}` });
    const u = await createTenant(ctx, { slug: `r-${randomBytes(4).toString('hex')}` });
    // Resume from the tenant's newest event, so the test does not depend on when B subscribes to Redis.
    await new Promise((r) => setTimeout(r, 100));
    const sealedHead = async (tenantId: string) => {
      for (;;) {
        const e = await db.prisma.auditEvent.findFirst({ where: { tenantId, seq: { not: null } }, orderBy: { seq: 'desc' } });
        if (e && (await db.prisma.auditEvent.count({ where: { tenantId, seq: null } })) === 0) return e.id.toString();
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    const after = await sealedHead(t.tenant.id);
    const conn = wsClient(await listen(b), t.adminToken);
    clients.push(conn);
    const sub = subscribe<{ type: string; payload: { code?: string }; seq: number }>(
      conn.client,
      `subscription($after: ID) { activity(after: $after) { id seq type payload } }`,
      { after },
      (d) => d.activity,
    );
    // Give B's Redis subscription a moment, so the live path (not only the log replay) is exercised.
    await new Promise((r) => setTimeout(r, 300));
    const published: string[] = [];
    const origPublish = a.deps.bus.publish.bind(a.deps.bus);
    a.deps.bus.publish = (events) => {
      for (const e of events) published.push(e.id);
      origPublish(events);
    };
    for (let i = 0; i < 3; i++) {
      const r = await gql(a, t.adminToken, `mutation($input: CreateProductInput!) { createProduct(input: $input) { __typename } }`, {
        input: { name: `P${i}`, code: `p${i}` },
      });
      expect(r.createProduct.__typename).toBe('Product');
    }
    await gql(a, u.adminToken, `mutation { createProduct(input: { name: "U", code: "u" }) { __typename } }`);
    const items = await sub.until((xs) => xs.length >= 3);
    await new Promise((r) => setTimeout(r, 300));
    expect(items.map((e) => e.payload.code)).toEqual(['p0', 'p1', 'p2']);
    // A sealed and published them (to Redis); B only relayed what came from Redis.
    expect(published.length).toBeGreaterThanOrEqual(3);
  });

  it('without a cursor, live events from A arrive on B through Redis', async () => {
    const ctx = { app: a.deps, prisma: a.deps.prisma, actor: { kind: 'anonymous' as const }, requestId: 'test' };
    const t = await createTenant(ctx, { slug: `r-${randomBytes(4).toString('hex')}` });
    const conn = wsClient(await listen(b), t.adminToken);
    clients.push(conn);
    const sub = subscribe<{ type: string }>(conn.client, `subscription { activity { type } }`, {}, (d) => d.activity);
    await new Promise((r) => setTimeout(r, 500));
    await gql(a, t.adminToken, `mutation { createCustomer(input: { name: "Live" }) { __typename } }`);
    const items = await sub.until((xs) => xs.some((x) => x.type === 'customer.created'));
    expect(items.map((x) => x.type)).toContain('customer.created');
  });
});
