import { createServer } from 'node:http';
import { decodeGlobalID } from '@pothos/plugin-relay';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshPostgres, ok, startTestServer, testDatabaseUrl, type TestServer } from '../../../test/harness.ts';
import { dispatchersOf, PER_ENDPOINT, startDispatcher, type Dispatcher } from './dispatcher.ts';

/*
 * Endpoints whose deliveries keep failing are disabled by themselves (TESSERA_WEBHOOK_DISABLE_AFTER_FAILURES),
 * against real receivers on 127.0.0.1 that answer 500. A run is the deliveries that ended FAILED (after
 * their last attempt) one after another with no success between. Nothing asserts a duration: every wait
 * is for a condition.
 */

const ENV = {
  TESSERA_WEBHOOK_RETRY_BASE_MS: '20',
  TESSERA_WEBHOOK_MAX_ATTEMPTS: '2',
  TESSERA_WEBHOOK_TIMEOUT_MS: '5000',
  TESSERA_WEBHOOK_DISABLE_AFTER_FAILURES: '3',
};

const CREATE = `mutation($input: CreateWebhookEndpointInput!) {
  createWebhookEndpoint(input: $input) { __typename ... on CreateWebhookEndpointPayload { endpoint { id } } }
}`;
const UPDATE = `mutation($input: UpdateWebhookEndpointInput!) {
  updateWebhookEndpoint(input: $input) {
    __typename
    ... on WebhookEndpoint { id enabled disabledReason disabledAt consecutiveFailures }
    ... on Error { message }
  }
}`;
const ENDPOINT = `query($id: ID!) {
  webhookEndpoint(id: $id) {
    id enabled disabledReason disabledAt consecutiveFailures
    deliveries(first: 50) { edges { node { id eventType status attempts } } }
  }
}`;
const CREATE_CUSTOMER = `mutation($name: String!) { createCustomer(input: { name: $name }) { __typename } }`;

interface EndpointState {
  id: string;
  enabled: boolean;
  disabledReason: 'MANUAL' | 'DELIVERY_FAILURES' | null;
  disabledAt: string | null;
  consecutiveFailures: number;
  deliveries: { edges: { node: { id: string; eventType: string; status: 'PENDING' | 'SUCCEEDED' | 'FAILED'; attempts: number } }[] };
}

async function waitFor<T>(what: string, check: () => Promise<T | null | undefined | false> | T | null | undefined | false, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 30));
  }
}

const closers: (() => Promise<void>)[] = [];

/** A local receiver; `answer` gives the status of the n-th request (1-based), or a promise of it (to hold it). */
async function receiver(answer: (n: number) => number | Promise<number>) {
  const got: { type: string; eventId: string; status: number }[] = [];
  let n = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const json = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { id: string; type: string };
      const status = await answer(++n);
      got.push({ type: json.type, eventId: json.id, status });
      res.writeHead(status).end(status < 300 ? 'ok' : 'receiver is down');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}/hook`, got };
}

afterAll(async () => {
  await Promise.all(closers.map((c) => c()));
});

async function createEndpoint(s: TestServer, token: string, url: string, eventTypes: string[]) {
  const r = ok(await s.gql(CREATE, { input: { url, eventTypes } }, { token }));
  expect(r.createWebhookEndpoint.__typename).toBe('CreateWebhookEndpointPayload');
  return r.createWebhookEndpoint.endpoint.id as string;
}

async function state(s: TestServer, token: string, id: string): Promise<EndpointState> {
  return ok(await s.gql(ENDPOINT, { id }, { token })).webhookEndpoint;
}

/** Creates one customer per call and waits for the endpoint's delivery of it to be over (the tenant's only one). */
function deliverer(s: TestServer, token: string, id: string) {
  let created = 0;
  const deliverOne = async () => {
    ok(await s.gql(CREATE_CUSTOMER, { name: `Customer ${++created}` }, { token }));
    await waitFor(`delivery ${created} over`, async () => {
      const e = await state(s, token, id);
      const done = e.deliveries.edges.filter((x) => x.node.status !== 'PENDING');
      return e.deliveries.edges.length === created && done.length === created;
    });
    // Read again: the query reads the endpoint before its deliveries, so the read that saw the last one
    // over may hold the endpoint as it was just before.
    return state(s, token, id);
  };
  return Object.assign(deliverOne, { created: () => created });
}

describe('an endpoint whose deliveries keep failing', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer({ env: ENV });
  });
  afterAll(async () => {
    await s?.close();
  });

  it('counts the deliveries that failed in a row; a success ends the run; the 3rd in a row disables it, with a reason, a time and one audit event', async () => {
    const t = await s.tenant();
    let answer = (_attempt: number) => 500;
    const hook = await receiver(() => answer(0));
    const id = await createEndpoint(s, t.token, hook.url, ['customer.created']);
    // Another endpoint of the tenant hears about it: webhook.auto_disabled is an event like the others.
    const watcher = await receiver(() => 200);
    await createEndpoint(s, t.token, watcher.url, ['webhook.auto_disabled']);

    const deliverOne = deliverer(s, t.token, id);

    let e = await deliverOne();
    expect(e).toMatchObject({ enabled: true, consecutiveFailures: 1, disabledReason: null, disabledAt: null });
    expect(e.deliveries.edges[0]!.node).toMatchObject({ status: 'FAILED', attempts: 2 });
    e = await deliverOne();
    expect(e).toMatchObject({ enabled: true, consecutiveFailures: 2 });

    // A first attempt that fails and a retry that succeeds: a success, which ends the run.
    let n = 0;
    answer = () => (++n === 1 ? 500 : 200);
    e = await deliverOne();
    expect(e.deliveries.edges[0]!.node).toMatchObject({ status: 'SUCCEEDED', attempts: 2 });
    expect(e).toMatchObject({ enabled: true, consecutiveFailures: 0 });

    answer = () => 500;
    e = await deliverOne();
    e = await deliverOne();
    expect(e).toMatchObject({ enabled: true, consecutiveFailures: 2 });
    const before = Date.now();
    e = await deliverOne();
    expect(e).toMatchObject({ enabled: false, disabledReason: 'DELIVERY_FAILURES', consecutiveFailures: 3 });
    expect(Math.abs(new Date(e.disabledAt!).getTime() - before)).toBeLessThan(60_000);

    const endpointId = decodeGlobalID(id).id;
    const audit = await s.db.prisma.auditEvent.findMany({ where: { tenantId: t.id, type: 'webhook.auto_disabled' } });
    expect(audit).toHaveLength(1);
    const lastFailed = e.deliveries.edges[0]!.node;
    expect(audit[0]).toMatchObject({ actorType: 'system', subjectType: 'WebhookEndpoint', subjectId: endpointId });
    expect(audit[0]!.payload).toEqual({ url: hook.url, consecutiveFailures: 3, disableAfterFailures: 3, lastDeliveryId: decodeGlobalID(lastFailed.id).id });
    const heard = await waitFor('the watcher to hear of it', () => watcher.got.find((r) => r.type === 'webhook.auto_disabled'));
    expect(heard.eventId).toBe(audit[0]!.id.toString());

    // Disabled: nothing more goes out.
    const sent = hook.got.length;
    ok(await s.gql(CREATE_CUSTOMER, { name: 'While disabled' }, { token: t.token }));
    // Sealed (chained) before the passes below, which could send it, and before the re-enable below: an
    // endpoint re-enabled starts at the chain head, and an event sealed after that would still be its.
    await waitFor('the event sealed', async () => (await s.db.prisma.auditEvent.count({ where: { tenantId: t.id, seq: null } })) === 0);
    for (const d of dispatchersOf(s.app.deps)) await d.runOnce();
    await Promise.all(dispatchersOf(s.app.deps).map((d) => d.idle()));
    expect(hook.got.length).toBe(sent);
    expect((await state(s, t.token, id)).deliveries.edges).toHaveLength(deliverOne.created());

    // Re-enabled by hand: a clean slate, and the run starts again from 0.
    const r = ok(await s.gql(UPDATE, { input: { id, enabled: true } }, { token: t.token }));
    expect(r.updateWebhookEndpoint).toMatchObject({ enabled: true, disabledReason: null, disabledAt: null, consecutiveFailures: 0 });
    e = await deliverOne();
    expect(e).toMatchObject({ enabled: true, consecutiveFailures: 1 });

    // Disabled by hand: the reason says so.
    const off = ok(await s.gql(UPDATE, { input: { id, enabled: false } }, { token: t.token }));
    expect(off.updateWebhookEndpoint).toMatchObject({ enabled: false, disabledReason: 'MANUAL', consecutiveFailures: 1 });
    expect(off.updateWebhookEndpoint.disabledAt).not.toBeNull();
    expect(await s.db.prisma.auditEvent.count({ where: { tenantId: t.id, type: 'webhook.auto_disabled' } })).toBe(1);
  });

  it('starts the run again from 0 when the URL changes, not when the description or event types do', async () => {
    const t = await s.tenant();
    const oldHook = await receiver(() => 500);
    const newHook = await receiver(() => 500);
    const id = await createEndpoint(s, t.token, oldHook.url, ['customer.created']);
    const deliverOne = deliverer(s, t.token, id);
    await deliverOne();
    let e = await deliverOne();
    expect(e).toMatchObject({ enabled: true, consecutiveFailures: 2 });

    // The same address again, a description, other event types: still the old address's run.
    const update = async (input: Record<string, unknown>) => {
      const r = ok(await s.gql(UPDATE, { input: { id, ...input } }, { token: t.token })).updateWebhookEndpoint;
      expect(r.__typename).toBe('WebhookEndpoint');
      return r;
    };
    expect(await update({ url: oldHook.url })).toMatchObject({ enabled: true, consecutiveFailures: 2 });
    expect(await update({ description: 'Billing receiver' })).toMatchObject({ enabled: true, consecutiveFailures: 2 });
    expect(await update({ eventTypes: ['customer.*'] })).toMatchObject({ enabled: true, consecutiveFailures: 2 });
    expect(await state(s, t.token, id)).toMatchObject({ consecutiveFailures: 2 });

    // A new address: its own run, from 0, with the full limit (3) before it is disabled.
    expect(await update({ url: newHook.url, description: 'Moved' })).toMatchObject({ enabled: true, consecutiveFailures: 0, disabledReason: null });
    expect(await state(s, t.token, id)).toMatchObject({ consecutiveFailures: 0 });
    const sentToOld = oldHook.got.length;
    e = await deliverOne();
    expect(e).toMatchObject({ enabled: true, consecutiveFailures: 1, disabledReason: null });
    e = await deliverOne();
    expect(e).toMatchObject({ enabled: true, consecutiveFailures: 2, disabledReason: null });
    e = await deliverOne();
    expect(e).toMatchObject({ enabled: false, disabledReason: 'DELIVERY_FAILURES', consecutiveFailures: 3 });
    expect(oldHook.got.length).toBe(sentToOld);
    expect(newHook.got.filter((g) => g.type === 'customer.created')).toHaveLength(3 * 2);
    const audit = await s.db.prisma.auditEvent.findMany({ where: { tenantId: t.id, type: 'webhook.auto_disabled' } });
    expect(audit).toHaveLength(1);
    expect(audit[0]!.payload).toMatchObject({ url: newHook.url, consecutiveFailures: 3 });
  });

  it('does not count, for the new URL, a failure of an attempt made to the old one that ends after the change', async () => {
    const t = await s.tenant();
    // The first attempt fails at once; the second (the last) is held until released.
    const held: ((status: number) => void)[] = [];
    const oldHook = await receiver((n) => (n === 1 ? 500 : new Promise<number>((resolve) => held.push(resolve))));
    const newHook = await receiver(() => 500);
    const id = await createEndpoint(s, t.token, oldHook.url, ['customer.created']);
    ok(await s.gql(CREATE_CUSTOMER, { name: 'In flight' }, { token: t.token }));
    await waitFor('the last attempt in flight to the old URL', () => held.length === 1);

    const r = ok(await s.gql(UPDATE, { input: { id, url: newHook.url } }, { token: t.token })).updateWebhookEndpoint;
    expect(r).toMatchObject({ __typename: 'WebhookEndpoint', enabled: true, consecutiveFailures: 0 });
    held[0]!(500);
    await waitFor('the delivery over', async () => (await state(s, t.token, id)).deliveries.edges[0]?.node.status === 'FAILED');
    let e = await state(s, t.token, id);
    expect(e.deliveries.edges.map((d) => d.node)).toMatchObject([{ status: 'FAILED', attempts: 2 }]);
    expect(e).toMatchObject({ enabled: true, consecutiveFailures: 0 });

    // The new URL's own failures count.
    ok(await s.gql(CREATE_CUSTOMER, { name: 'After the move' }, { token: t.token }));
    await waitFor('the second delivery over', async () => (await state(s, t.token, id)).deliveries.edges.filter((d) => d.node.status === 'FAILED').length === 2);
    e = await state(s, t.token, id);
    expect(e).toMatchObject({ enabled: true, consecutiveFailures: 1 });
    expect(newHook.got).toHaveLength(2);
    expect(oldHook.got).toHaveLength(2);
  });
});

describe('TESSERA_WEBHOOK_DISABLE_AFTER_FAILURES=0', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer({ env: { ...ENV, TESSERA_WEBHOOK_MAX_ATTEMPTS: '1', TESSERA_WEBHOOK_DISABLE_AFTER_FAILURES: '0' } });
  });
  afterAll(async () => {
    await s?.close();
  });

  it('never disables an endpoint, however many deliveries fail', async () => {
    const t = await s.tenant();
    const hook = await receiver(() => 500);
    const id = await createEndpoint(s, t.token, hook.url, ['customer.created']);
    for (let i = 0; i < 5; i++) ok(await s.gql(CREATE_CUSTOMER, { name: `Never ${i}` }, { token: t.token }));
    await waitFor('5 failed deliveries', async () => (await state(s, t.token, id)).deliveries.edges.filter((d) => d.node.status === 'FAILED').length === 5);
    const e = await state(s, t.token, id);
    expect(e).toMatchObject({ enabled: true, consecutiveFailures: 5, disabledReason: null });
    expect(await s.db.prisma.auditEvent.count({ where: { tenantId: t.id, type: 'webhook.auto_disabled' } })).toBe(0);
  });
});

describe('several instances recording failures at once', () => {
  // On PostgreSQL two apps (their own pools and dispatchers) on a fresh database; on PGlite one app and a
  // second dispatcher beside its own.
  let one: TestServer;
  let two: TestServer | undefined;
  let fresh: Awaited<ReturnType<typeof freshPostgres>> | undefined;
  let extra: Dispatcher | undefined;
  const env = { ...ENV, TESSERA_WEBHOOK_MAX_ATTEMPTS: '1' };

  beforeAll(async () => {
    if (testDatabaseUrl) {
      fresh = await freshPostgres(testDatabaseUrl);
      one = await startTestServer({ databaseUrl: fresh.url, env });
      two = await startTestServer({ databaseUrl: fresh.url, env });
    } else {
      one = await startTestServer({ env });
      extra = startDispatcher(one.app.deps);
    }
  }, 120_000);
  afterAll(async () => {
    await extra?.stop();
    await one?.close();
    await two?.close();
    await fresh?.drop();
  });

  it(`counts exactly and disables once when ${PER_ENDPOINT} failures are recorded together; re-enabled, the pending deliveries go out`, async () => {
    const servers = two ? [one, two] : [one];
    const dispatchers = () => servers.flatMap((x) => dispatchersOf(x.app.deps));
    const t = await one.tenant();
    // The first PER_ENDPOINT requests are held until all of them are in (and every delivery is queued),
    // then all answered 500 at once: their outcomes are recorded concurrently (on PostgreSQL from two
    // processes' pools).
    const held: ((status: number) => void)[] = [];
    let up = false;
    const hook = await receiver((n) => {
      if (n > PER_ENDPOINT) return up ? 200 : 500;
      return new Promise<number>((resolve) => held.push(resolve));
    });
    const id = await createEndpoint(one, t.token, hook.url, ['customer.created']);
    const endpointId = decodeGlobalID(id).id;
    const TOTAL = 12;
    await Promise.all(
      Array.from({ length: TOTAL }, async (_, i) => {
        const via = servers[i % servers.length]!;
        expect(ok(await via.gql(CREATE_CUSTOMER, { name: `Burst ${i}` }, { token: t.token })).createCustomer.__typename).toBe('Customer');
      }),
    );
    const count = (status: 'PENDING' | 'FAILED' | 'SUCCEEDED') => one.db.prisma.webhookDelivery.count({ where: { endpointId, status } });
    // Queued before any outcome: events not yet turned into deliveries when the endpoint is disabled are
    // skipped, as for an endpoint disabled by hand (re-enabled, it starts from the events raised then).
    await waitFor('every delivery queued and the first ones held', async () =>
      held.length === PER_ENDPOINT && (await one.db.prisma.webhookDelivery.count({ where: { endpointId } })) === TOTAL);
    for (const answer of held) answer(500);
    await waitFor('the endpoint disabled, nothing in flight', async () => {
      const row = await one.db.prisma.webhookEndpoint.findUniqueOrThrow({ where: { id: endpointId } });
      const inFlight = await one.db.prisma.webhookDelivery.count({ where: { endpointId, claimToken: { not: null } } });
      return !row.enabled && inFlight === 0;
    });
    await Promise.all(dispatchers().map((d) => d.idle()));

    const row = await one.db.prisma.webhookEndpoint.findUniqueOrThrow({ where: { id: endpointId } });
    expect(row).toMatchObject({ enabled: false, disabledReason: 'DELIVERY_FAILURES', consecutiveFailures: 3 });
    expect(await one.db.prisma.auditEvent.count({ where: { tenantId: t.id, type: 'webhook.auto_disabled' } })).toBe(1);
    const failed = await count('FAILED');
    // Every request was answered 500 and recorded; those that ended after the 3rd did not count.
    expect(failed).toBe(hook.got.length);
    expect(failed).toBeGreaterThanOrEqual(PER_ENDPOINT);
    expect(failed + (await count('PENDING'))).toBe(TOTAL);
    const pending = TOTAL - failed;
    // At most PER_ENDPOINT were in flight when the 3rd failure was recorded, and nothing is claimed after.
    expect(pending).toBeGreaterThanOrEqual(TOTAL - 3 - PER_ENDPOINT);

    // Disabled: passes on every instance send nothing.
    for (const d of dispatchers()) await d.runOnce();
    await Promise.all(dispatchers().map((d) => d.idle()));
    expect(hook.got.length).toBe(failed);
    expect(await count('PENDING')).toBe(pending);

    // The receiver is back; re-enabled, the pending deliveries go out, once each.
    up = true;
    const r = ok(await (two ?? one).gql(UPDATE, { input: { id, enabled: true } }, { token: t.token }));
    expect(r.updateWebhookEndpoint).toMatchObject({ enabled: true, disabledReason: null, disabledAt: null, consecutiveFailures: 0 });
    await waitFor('the pending deliveries sent', async () => (await count('SUCCEEDED')) === pending || (await Promise.all(dispatchers().map((d) => d.runOnce())), false));
    expect(await count('PENDING')).toBe(0);
    expect(new Set(hook.got.map((g) => g.eventId)).size).toBe(TOTAL);
    expect(hook.got).toHaveLength(TOTAL);
    const after = await one.db.prisma.webhookEndpoint.findUniqueOrThrow({ where: { id: endpointId } });
    expect(after).toMatchObject({ enabled: true, consecutiveFailures: 0 });
  });
});
