import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Instance, startInstance, stopInstance } from '../../../test/processes.ts';
import { freshPostgres, ok, startTestServer, testDatabaseUrl, type TestServer } from '../../../test/harness.ts';
import { subscribe, wsClient, type WsClient } from '../../../test/ws.ts';

/*
 * Two real server processes (`src/main.ts`) on one fresh PostgreSQL database with REDIS_URL set: an
 * activation on process A reaches a graphql-ws subscriber of process B. Channels are per tenant id (a
 * fresh uuid), so runs sharing the Redis never see each other's events.
 */
const redisUrl = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

describe.skipIf(!testDatabaseUrl)('events across two server processes through Redis', () => {
  let fresh: Awaited<ReturnType<typeof freshPostgres>>;
  let setup: TestServer;
  let dataDir: string;
  const instances: Instance[] = [];
  const clients: WsClient[] = [];

  beforeAll(async () => {
    fresh = await freshPostgres(testDatabaseUrl!);
    setup = await startTestServer({ databaseUrl: fresh.url });
    dataDir = mkdtempSync(path.join(tmpdir(), 'tessera-bus-'));
    const env = {
      DATABASE_URL: fresh.url,
      REDIS_URL: redisUrl,
      PORT: '0',
      HOST: '127.0.0.1',
      TESSERA_DATA_DIR: dataDir,
      TESSERA_DEMO: '0',
      TESSERA_MASTER_KEY: randomBytes(32).toString('base64'),
      NODE_ENV: 'test',
    };
    instances.push(...(await Promise.all([startInstance(env), startInstance(env)])));
  }, 180_000);

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.dispose()));
    await Promise.all(instances.map(stopInstance));
    await setup?.close();
    await fresh?.drop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  }, 60_000);

  it('an activation on process A reaches a graphql-ws subscriber on process B', async () => {
    const t = await setup.tenant();
    const gql = async (query: string, variables: Record<string, unknown> = {}) => ok(await setup.gql(query, variables, { token: t.token }));
    const productId = (await gql(`mutation { createProduct(input: { name: "CAD", code: "cad" }) { ... on Product { id } } }`)).createProduct.id;
    const editionId = (await gql(`mutation($input: CreateEditionInput!) { createEdition(input: $input) { ... on Edition { id } } }`, {
      input: { productId, name: 'Pro', code: 'pro', licenseType: 'PERPETUAL', maxActivations: 3 },
    })).createEdition.id;
    const lic = (await gql(`mutation($input: CreateLicenseInput!) { createLicense(input: $input) { ... on CreateLicensePayload { license { id key } } } }`, {
      input: { editionId },
    })).createLicense.license as { id: string; key: string };

    const [a, b] = instances as [Instance, Instance];
    const conn = wsClient(`${b.url.replace('http', 'ws')}/graphql`, t.token);
    clients.push(conn);
    const activity = subscribe<{ type: string; licenseId: string }>(conn.client, `subscription { activity { type licenseId } }`, {}, (d) => d.activity);
    const live = subscribe<{ activationsUsed: number; eventType: string | null }>(
      conn.client,
      `subscription($id: ID!) { licenseLive(licenseId: $id) { activationsUsed eventType } }`,
      { id: lic.id },
      (d) => d.licenseLive,
    );
    await live.until((xs) => xs.length >= 1);
    // The activity subscription answers nothing until an event comes, and it starts from the chain head
    // it reads when B starts it: on a loaded machine that can come after an event made right now. So
    // events made on A (new products) until one reaches it: from then on B delivers everything after it.
    for (let attempt = 1; !activity.items.some((x) => x.type === 'product.created'); attempt++) {
      const probe = await fetch(`${a.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${t.token}` },
        body: JSON.stringify({ query: `mutation { createProduct(input: { name: "Probe", code: "probe-${attempt}" }) { __typename } }` }),
      });
      expect(((await probe.json()) as { data: { createProduct: { __typename: string } } }).data.createProduct.__typename).toBe('Product');
      await activity.until((xs) => xs.some((x) => x.type === 'product.created'), 2_000).catch((err: Error) => {
        if (attempt >= 10) throw err;
      });
    }

    const res = await fetch(`${a.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        query: `mutation($input: ActivateInput!) { activate(input: $input) { __typename ... on LicensingError { code message } } }`,
        variables: { input: { key: lic.key, fingerprint: 'proc-a-device' } },
      }),
    });
    const body = (await res.json()) as { data: { activate: { __typename: string } } };
    expect(body.data.activate.__typename).toBe('ActivateSuccess');

    const events = await activity.until((xs) => xs.some((x) => x.type === 'activation.created'));
    expect(events.find((x) => x.type === 'activation.created')!.licenseId).toBe(lic.id);
    const states = await live.until((xs) => xs.some((x) => x.eventType === 'activation.created'));
    expect(states.find((x) => x.eventType === 'activation.created')!.activationsUsed).toBe(1);
  }, 60_000);
});
