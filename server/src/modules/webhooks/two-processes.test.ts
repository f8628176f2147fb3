import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { decodeGlobalID } from '@pothos/plugin-relay';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshPostgres, ok, startTestServer, testDatabaseUrl, testEnv, type TestServer } from '../../../test/harness.ts';
import { type Instance, startInstance, stopInstance } from '../../../test/processes.ts';
import { dispatchersOf, PER_ENDPOINT } from './dispatcher.ts';

/**
 * The per-endpoint limit across processes: two real server instances (`src/main.ts`) on one fresh
 * PostgreSQL database, both dispatching, and a receiver that holds every request and counts the ones it
 * holds at once. Which instance made a claim shows in its lease (each instance has its own attempt
 * timeout, and a claim lasts the timeout plus 30 s), so the test knows when both have claimed.
 */

const TIMEOUTS = [100_000, 200_000];
const CREATE = `mutation($input: CreateWebhookEndpointInput!) {
  createWebhookEndpoint(input: $input) { __typename ... on CreateWebhookEndpointPayload { endpoint { id } } }
}`;
const CREATE_CUSTOMER = `mutation($name: String!) { createCustomer(input: { name: $name }) { __typename } }`;

async function waitFor<T>(what: string, check: () => Promise<T | null | undefined | false> | T | null | undefined | false, output = () => ''): Promise<T> {
  const deadline = Date.now() + 90_000;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe.skipIf(!testDatabaseUrl)('webhook attempts in flight, two server processes on one PostgreSQL', () => {
  let fresh: Awaited<ReturnType<typeof freshPostgres>>;
  let setup: TestServer;
  let dataDir: string;
  const instances: Instance[] = [];
  const held = new Map<string, (() => void)[]>();
  const now = new Map<string, number>();
  const most = new Map<string, number>();
  let released = false;
  const receiver = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const p = req.url ?? '/';
      now.set(p, (now.get(p) ?? 0) + 1);
      most.set(p, Math.max(most.get(p) ?? 0, now.get(p)!));
      const answer = () => {
        now.set(p, now.get(p)! - 1);
        res.writeHead(200).end('ok');
      };
      if (released) answer();
      else held.set(p, [...(held.get(p) ?? []), answer]);
    });
  });
  const release = (p: string) => {
    for (const answer of held.get(p)?.splice(0) ?? []) answer();
  };

  beforeAll(async () => {
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    fresh = await freshPostgres(testDatabaseUrl!);
    setup = await startTestServer({ databaseUrl: fresh.url });
    // The set-up app makes no deliveries: only the two processes do.
    await Promise.all(dispatchersOf(setup.app.deps).map((d) => d.stop()));
    dataDir = mkdtempSync(path.join(tmpdir(), 'tessera-webhooks-two-'));
    const env = {
      DATABASE_URL: fresh.url,
      PORT: '0',
      HOST: '127.0.0.1',
      TESSERA_DATA_DIR: dataDir,
      TESSERA_DEMO: '0',
      // The secret is sealed by the set-up app; the instances open it with the same key.
      TESSERA_MASTER_KEY: testEnv.TESSERA_MASTER_KEY,
      NODE_ENV: 'test',
      LOG_LEVEL: 'error',
    };
    instances.push(
      ...(await Promise.all(TIMEOUTS.map((t) => startInstance({ ...env, TESSERA_WEBHOOK_TIMEOUT_MS: String(t) })))),
    );
  }, 180_000);

  afterAll(async () => {
    released = true;
    for (const p of held.keys()) release(p);
    await Promise.all(instances.map(stopInstance));
    await setup?.close();
    await fresh?.drop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    await new Promise<void>((resolve) => receiver.close(() => resolve()));
  }, 60_000);

  it(`an endpoint has at most ${PER_ENDPOINT} attempts in flight, with both processes claiming`, async () => {
    const output = () => instances.map((i) => i.output()).join('\n');
    const base = `http://127.0.0.1:${(receiver.address() as { port: number }).port}`;
    const busy = await setup.tenant();
    const probe = await setup.tenant();
    const endpointOf = async (token: string, p: string) =>
      decodeGlobalID(ok(await setup.gql(CREATE, { input: { url: `${base}${p}`, eventTypes: ['customer.created'] } }, { token })).createWebhookEndpoint.endpoint.id).id;
    const busyId = await endpointOf(busy.token, '/busy');
    const probeId = await endpointOf(probe.token, '/probe');
    for (let i = 0; i < 12; i++) ok(await setup.gql(CREATE_CUSTOMER, { name: `Backlog ${i}` }, { token: busy.token }));
    await waitFor('the busy endpoint at its limit', () => (now.get('/busy') ?? 0) >= PER_ENDPOINT, output);

    // One probe event at a time, held until its claimer is known, until each process has claimed one:
    // each claim was made after the busy endpoint's backlog was due.
    const claimers = new Set<number>();
    for (let i = 0; claimers.size < 2; i++) {
      if (i === 40) throw new Error(`only instance ${[...claimers]} claimed in 40 probes\n${output()}`);
      ok(await setup.gql(CREATE_CUSTOMER, { name: `Probe ${i}` }, { token: probe.token }));
      const claimed = await waitFor('the probe claimed', () =>
        setup.db.prisma.webhookDelivery.findFirst({ where: { endpointId: probeId, status: 'PENDING', claimToken: { not: null } } }), output);
      const lease = claimed.nextAttemptAt!.getTime() - claimed.lastAttemptAt!.getTime();
      claimers.add(TIMEOUTS.findIndex((t) => Math.abs(lease - (t + 30_000)) < 1_000));
      await waitFor('the probe held', () => now.get('/probe') === 1, output);
      release('/probe');
      await waitFor('the probe recorded', async () => (await setup.db.prisma.webhookDelivery.count({ where: { endpointId: probeId, status: 'PENDING' } })) === 0, output);
    }
    expect([...claimers].sort()).toEqual([0, 1]);

    expect(await setup.db.prisma.webhookDelivery.count({ where: { endpointId: busyId, status: 'PENDING', claimToken: { not: null } } })).toBe(PER_ENDPOINT);
    expect(most.get('/busy')).toBe(PER_ENDPOINT);
    released = true;
    release('/busy');
    await waitFor('the backlog delivered', async () => (await setup.db.prisma.webhookDelivery.count({ where: { endpointId: busyId, status: 'SUCCEEDED' } })) === 12, output);
    expect(most.get('/busy')).toBe(PER_ENDPOINT);
  }, 240_000);
});
