import { createHmac } from 'node:crypto';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import { decodeGlobalID } from '@pothos/plugin-relay';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshPostgres, ok, startTestServer, testDatabaseUrl, type TestServer } from '../../../test/harness.ts';
import { ACTIVATE, issue } from '../activation/fixtures.ts';
import { EVENT_TYPES } from '../audit/event-types.ts';
import type { ServiceContext } from '../audit/service.ts';
import { dispatchersOf, PER_ENDPOINT, PER_TENANT, postWebhook, startDispatcher } from './dispatcher.ts';
import { createEndpoint, MAX_ENDPOINTS_PER_TENANT, MAX_MISSED_EVENTS } from './service.ts';
import { verifySignature } from './signature.ts';
import { isPrivateAddress } from './targets.ts';

/*
 * Webhooks through the real stack: GraphQL admin operations, the audit log, the dispatcher started by
 * buildApp, and a real HTTP receiver on 127.0.0.1. Retries use a 50 ms base and 3 attempts. Nothing
 * here asserts a duration: every wait is for a condition, with a generous limit.
 */

const ENV = { TESSERA_WEBHOOK_RETRY_BASE_MS: '50', TESSERA_WEBHOOK_MAX_ATTEMPTS: '3', TESSERA_WEBHOOK_TIMEOUT_MS: '5000' };

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
  json: { id: string; type: string; tenant: { id: string; slug: string }; subject: { type: string; id: string }; licenseId: string | null; payload: any };
  status: number;
}

interface Receiver {
  url: string;
  got: Received[];
  close(): Promise<void>;
}

/** A local HTTP endpoint; `answer` picks the status of the n-th request (1-based). */
async function receiver(answer: (n: number, r: Omit<Received, 'status'>) => number | Promise<number> = () => 200): Promise<Receiver> {
  const got: Received[] = [];
  let n = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const r = { headers: req.headers, body, json: JSON.parse(body) };
      const status = await answer(++n, r);
      got.push({ ...r, status });
      res.writeHead(status, { 'content-type': 'text/plain' }).end(status < 300 ? 'thanks' : 'receiver says no');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    got,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

async function waitFor<T>(what: string, check: () => Promise<T | null | undefined | false> | T | null | undefined | false, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const CREATE = `mutation($input: CreateWebhookEndpointInput!) {
  createWebhookEndpoint(input: $input) {
    __typename
    ... on CreateWebhookEndpointPayload { secret endpoint { id url eventTypes enabled secretPrefix } }
    ... on Error { message }
    ... on ValidationError { fields { path message } }
  }
}`;
const UPDATE = `mutation($input: UpdateWebhookEndpointInput!) {
  updateWebhookEndpoint(input: $input) {
    __typename
    ... on WebhookEndpoint { id url eventTypes enabled description }
    ... on Error { message }
    ... on ValidationError { fields { path message } }
  }
}`;
const ROTATE = `mutation($input: RotateWebhookSecretInput!) {
  rotateWebhookSecret(input: $input) { __typename ... on RotateWebhookSecretPayload { secret endpoint { secretPrefix previousSecretExpiresAt } } ... on Error { message } }
}`;
const DELETE = `mutation($id: ID!) {
  deleteWebhookEndpoint(input: { id: $id }) { __typename ... on DeleteWebhookEndpointPayload { deletedId } ... on Error { message } }
}`;
const TEST = `mutation($id: ID!) {
  sendTestWebhook(input: { id: $id }) { __typename ... on WebhookDelivery { id eventId eventType status } ... on Error { message } }
}`;
const REPLAY = `mutation($id: ID!) {
  replayWebhookDelivery(input: { id: $id }) { __typename ... on WebhookDelivery { id eventId status replayOfId } ... on Error { message } }
}`;
const DELIVERIES = `query($id: ID!, $status: WebhookDeliveryStatus) {
  webhookEndpoint(id: $id) {
    id
    deliveries(first: 40, status: $status) {
      totalCount
      edges { node { id eventId eventSeq eventType status attempts nextAttemptAt lastResponseStatus lastResponseBody lastError replayOfId createdAt
        attemptLog { number succeeded responseStatus error } } }
    }
  }
}`;
const LIST = `{ webhookEndpoints(first: 50) { totalCount edges { node { id url } } } }`;
const CREATE_CUSTOMER = `mutation($name: String!) { createCustomer(input: { name: $name }) { __typename ... on Customer { id } ... on Error { message } } }`;
const CREATE_TOKEN = `mutation($input: CreateApiTokenInput!) { createApiToken(input: $input) { __typename ... on CreateApiTokenPayload { token } } }`;

type Delivery = {
  id: string;
  eventId: string;
  eventSeq: number | null;
  eventType: string;
  status: 'PENDING' | 'SUCCEEDED' | 'FAILED';
  attempts: number;
  lastResponseStatus: number | null;
  lastResponseBody: string | null;
  lastError: string | null;
  replayOfId: string | null;
  attemptLog: { number: number; succeeded: boolean; responseStatus: number | null; error: string | null }[];
};

let s: TestServer;
const receivers: Receiver[] = [];

beforeAll(async () => {
  s = await startTestServer({ env: ENV });
});
afterAll(async () => {
  // Dispatchers the tests started beside the app's own.
  if (s) await Promise.all(dispatchersOf(s.app.deps).map((d) => d.stop()));
  await s?.close();
  await Promise.all(receivers.map((r) => r.close()));
});

async function listen(answer?: Parameters<typeof receiver>[0]) {
  const r = await receiver(answer);
  receivers.push(r);
  return r;
}

async function endpoint(token: string, input: Record<string, unknown>) {
  const r = ok(await s.gql(CREATE, { input }, { token }));
  expect(r.createWebhookEndpoint.__typename).toBe('CreateWebhookEndpointPayload');
  return r.createWebhookEndpoint as { secret: string; endpoint: { id: string; url: string; eventTypes: string[]; enabled: boolean; secretPrefix: string } };
}

async function deliveries(token: string, id: string, status?: string): Promise<Delivery[]> {
  const r = ok(await s.gql(DELIVERIES, { id, status }, { token }));
  return r.webhookEndpoint.deliveries.edges.map((e: { node: Delivery }) => e.node);
}

async function customer(token: string, name = 'Webhook customer') {
  const r = ok(await s.gql(CREATE_CUSTOMER, { name }, { token }));
  expect(r.createCustomer.__typename).toBe('Customer');
  return decodeGlobalID(r.createCustomer.id).id;
}

async function roleToken(owner: string, role: string) {
  return ok(await s.gql(CREATE_TOKEN, { input: { name: role, role } }, { token: owner })).createApiToken.token as string;
}

describe('webhook deliveries', () => {
  let tenant: Awaited<ReturnType<TestServer['tenant']>>;
  let firstDelivery: Delivery;
  let hook: Receiver;
  let created: Awaited<ReturnType<typeof endpoint>>;

  beforeAll(async () => {
    tenant = await s.tenant();
  });

  it('sends a signed activation event that the receiver verifies with the secret shown once', async () => {
    hook = await listen();
    created = await endpoint(tenant.token, { url: hook.url, eventTypes: ['activation.*'], description: 'Provisioning' });
    expect(created.secret).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
    expect(created.endpoint.secretPrefix).toBe(created.secret.slice(0, 12));
    // At rest the secret is encrypted.
    const row = await s.db.prisma.webhookEndpoint.findUniqueOrThrow({ where: { id: decodeGlobalID(created.endpoint.id).id } });
    expect(row.encryptedSecret).not.toContain(created.secret.slice(6));

    const l = await issue(s, tenant.token, { maxActivations: 3 });
    const a = ok(await s.gql(ACTIVATE, { input: { key: l.key, fingerprint: 'webhook-device-1' } }));
    expect(a.activate.__typename).toBe('ActivateSuccess');

    const got = await waitFor('the activation.created delivery', () => hook.got.find((r) => r.json.type === 'activation.created'));
    const header = String(got.headers['tessera-signature']);
    expect(header).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    // The check a receiver makes, by hand: HMAC-SHA256 over "<t>.<raw body>".
    const [, t, v1] = /^t=(\d+),v1=([0-9a-f]+)$/.exec(header)!;
    expect(createHmac('sha256', created.secret).update(`${t}.${got.body}`).digest('hex')).toBe(v1);
    expect(verifySignature(got.body, header, created.secret)).toBe(true);
    expect(verifySignature(got.body, header, 'whsec_someone-else')).toBe(false);
    expect(verifySignature(`${got.body} `, header, created.secret)).toBe(false);

    expect(got.headers['tessera-event-type']).toBe('activation.created');
    expect(got.headers['tessera-event-id']).toBe(got.json.id);
    expect(got.headers['content-type']).toBe('application/json');
    expect(got.json.tenant).toEqual({ id: tenant.id, slug: tenant.slug });
    expect(got.json.subject.type).toBe('Activation');
    expect(got.json.licenseId).toBe(l.id);
    // Only the subscribed types: the product, edition and license created before the activation are not sent.
    expect(hook.got.every((r) => r.json.type.startsWith('activation.'))).toBe(true);

    const [d] = await waitFor('the delivery recorded as SUCCEEDED', async () => {
      const list = await deliveries(tenant.token, created.endpoint.id);
      return list.length > 0 && list.every((x) => x.status === 'SUCCEEDED') && list;
    });
    firstDelivery = d!;
    expect(firstDelivery).toMatchObject({ eventType: 'activation.created', attempts: 1, lastResponseStatus: 200, lastResponseBody: 'thanks', lastError: null });
    expect(firstDelivery.eventSeq).toBeGreaterThan(0);
    expect(firstDelivery.attemptLog).toEqual([{ number: 1, succeeded: true, responseStatus: 200, error: null }]);
  });

  it('replays a delivery: the same event again, as a new delivery', async () => {
    const before = hook.got.length;
    const r = ok(await s.gql(REPLAY, { id: firstDelivery.id }, { token: tenant.token }));
    expect(r.replayWebhookDelivery).toMatchObject({ __typename: 'WebhookDelivery', eventId: firstDelivery.eventId, replayOfId: firstDelivery.id });
    const again = await waitFor('the replayed request', () => hook.got.length > before && hook.got[hook.got.length - 1]);
    expect(again.json.id).toBe(firstDelivery.eventId);
    expect(again.headers['tessera-delivery-id']).toBe(decodeGlobalID(r.replayWebhookDelivery.id).id);
    await waitFor('the replay recorded', async () => (await deliveries(tenant.token, created.endpoint.id)).find((d) => d.replayOfId === firstDelivery.id && d.status === 'SUCCEEDED'));
    const events = await s.db.prisma.auditEvent.findMany({ where: { tenantId: tenant.id, type: 'webhook.replayed' } });
    expect(events).toHaveLength(1);
  });

  it('sends a test event whatever the subscribed types', async () => {
    const r = ok(await s.gql(TEST, { id: created.endpoint.id }, { token: tenant.token }));
    expect(r.sendTestWebhook).toMatchObject({ __typename: 'WebhookDelivery', eventType: 'webhook.test' });
    const got = await waitFor('the test request', () => hook.got.find((x) => x.json.type === 'webhook.test'));
    expect(got.json.id).toMatch(/^test_/);
    expect(verifySignature(got.body, String(got.headers['tessera-signature']), created.secret)).toBe(true);
  });

  it('retries a receiver that answers 500 twice, then succeeds exactly once', async () => {
    const flaky = await listen((n) => (n <= 2 ? 500 : 200));
    const e = await endpoint(tenant.token, { url: flaky.url, eventTypes: ['customer.created'] });
    await customer(tenant.token, 'Flaky Inc');
    const [d] = await waitFor('the delivery to succeed', async () => {
      const list = await deliveries(tenant.token, e.endpoint.id);
      return list.length === 1 && list[0]!.status === 'SUCCEEDED' && list;
    });
    expect(flaky.got.map((r) => r.status)).toEqual([500, 500, 200]);
    expect(new Set(flaky.got.map((r) => r.json.id)).size).toBe(1);
    expect(flaky.got.map((r) => r.headers['tessera-attempt'])).toEqual(['1', '2', '3']);
    expect(d!.attempts).toBe(3);
    expect(d!.attemptLog.map((a) => [a.number, a.succeeded, a.responseStatus])).toEqual([
      [1, false, 500],
      [2, false, 500],
      [3, true, 200],
    ]);
    expect(d!.attemptLog[0]!.error).toBe('HTTP 500');
  });

  it('marks a delivery FAILED after the last attempt; replay sends it again', async () => {
    let up = false;
    const down = await listen(() => (up ? 200 : 503));
    const e = await endpoint(tenant.token, { url: down.url, eventTypes: ['customer.*'] });
    await customer(tenant.token, 'Down Ltd');
    const [d] = await waitFor('the delivery to fail', async () => {
      const list = await deliveries(tenant.token, e.endpoint.id, 'FAILED');
      return list.length === 1 && list;
    });
    expect(d).toMatchObject({ attempts: 3, lastResponseStatus: 503, lastError: 'HTTP 503', nextAttemptAt: null });
    expect(down.got).toHaveLength(3);
    up = true;
    const r = ok(await s.gql(REPLAY, { id: d!.id }, { token: tenant.token }));
    await waitFor('the replay to succeed', async () =>
      (await deliveries(tenant.token, e.endpoint.id, 'SUCCEEDED')).find((x) => x.id === r.replayWebhookDelivery.id),
    );
    expect(down.got[3]!.json.id).toBe(d!.eventId);
  });

  it('records a receiver answer the database cannot store as text (a NUL byte) and sends the event once', async () => {
    // A binary answer (gzip, an image, a protobuf): PostgreSQL text refuses \u0000, so the outcome used
    // to go unrecorded, the claim lapsed and the same event was sent again, every timeout, for ever.
    let requests = 0;
    const binary = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        requests += 1;
        res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0x00, 0x6f, 0x6b]));
      });
    });
    await new Promise<void>((resolve) => binary.listen(0, '127.0.0.1', resolve));
    receivers.push({ url: '', got: [], close: () => new Promise<void>((resolve) => binary.close(() => resolve())) });
    const e = await endpoint(tenant.token, { url: `http://127.0.0.1:${(binary.address() as { port: number }).port}/hook`, eventTypes: ['customer.created'] });
    await customer(tenant.token, 'Binary Answers Inc');
    const [d] = await waitFor('the delivery recorded as SUCCEEDED', async () => {
      const list = await deliveries(tenant.token, e.endpoint.id);
      return list.length === 1 && list[0]!.status === 'SUCCEEDED' && list;
    }, 20_000);
    expect(d).toMatchObject({ attempts: 1, lastResponseStatus: 200, lastError: null });
    expect(d!.lastResponseBody).not.toContain('\u0000');
    expect(d!.attemptLog).toEqual([{ number: 1, succeeded: true, responseStatus: 200, error: null }]);
    expect(requests).toBe(1);
  });

  it('rotates the secret; kept for a while, both secrets sign', async () => {
    const r = ok(await s.gql(ROTATE, { input: { id: created.endpoint.id, keepPreviousForHours: 24 } }, { token: tenant.token }));
    const fresh = r.rotateWebhookSecret.secret as string;
    expect(fresh).not.toBe(created.secret);
    expect(r.rotateWebhookSecret.endpoint.previousSecretExpiresAt).toBeTruthy();
    const before = hook.got.length;
    ok(await s.gql(TEST, { id: created.endpoint.id }, { token: tenant.token }));
    const got = await waitFor('the test request', () => hook.got.length > before && hook.got[hook.got.length - 1]);
    const header = String(got.headers['tessera-signature']);
    expect(header.match(/v1=/g)).toHaveLength(2);
    expect(verifySignature(got.body, header, fresh)).toBe(true);
    expect(verifySignature(got.body, header, created.secret)).toBe(true);

    const r2 = ok(await s.gql(ROTATE, { input: { id: created.endpoint.id } }, { token: tenant.token }));
    const latest = r2.rotateWebhookSecret.secret as string;
    const count = hook.got.length;
    ok(await s.gql(TEST, { id: created.endpoint.id }, { token: tenant.token }));
    const last = await waitFor('the next test request', () => hook.got.length > count && hook.got[hook.got.length - 1]);
    expect(verifySignature(last.body, String(last.headers['tessera-signature']), latest)).toBe(true);
    expect(verifySignature(last.body, String(last.headers['tessera-signature']), fresh)).toBe(false);
  });
});

describe('which events an endpoint receives', () => {
  it('filters by type and pattern; a disabled endpoint gets nothing; re-enabled, only what follows', async () => {
    const tenant = await s.tenant();
    const [licensesHook, customersHook, allHook, offHook] = await Promise.all([listen(), listen(), listen(), listen()]);
    const licenses = await endpoint(tenant.token, { url: licensesHook.url, eventTypes: ['license.*'] });
    const customers = await endpoint(tenant.token, { url: customersHook.url, eventTypes: ['customer.created'] });
    const all = await endpoint(tenant.token, { url: allHook.url, eventTypes: ['*'] });
    const off = await endpoint(tenant.token, { url: offHook.url, eventTypes: [], enabled: false });
    expect(all.endpoint.eventTypes).toEqual(['*']);
    expect(off.endpoint.enabled).toBe(false);

    await customer(tenant.token, 'Filter Co');
    await issue(s, tenant.token, {});
    // Events sealed together are delivered concurrently, in no set order (as webhooks are): wait for each.
    const expected = ['customer.created', 'product.created', 'edition.created', 'license.created'];
    const offId = decodeGlobalID(off.endpoint.id).id;
    await waitFor('all of them at the catch-all endpoint', () =>
      expected.every((t) => allHook.got.some((r) => r.json.type === t)) && allHook.got.some((r) => r.json.type === 'webhook.created' && r.json.subject.id === offId),
    );
    await waitFor('the license', () => licensesHook.got.find((r) => r.json.type === 'license.created'));
    await waitFor('the customer', () => customersHook.got.find((r) => r.json.type === 'customer.created'));
    const types = (r: Receiver) => r.got.map((x) => x.json.type);
    expect(types(licensesHook).every((t) => t.startsWith('license.'))).toBe(true);
    expect(types(customersHook)).toEqual(['customer.created']);
    expect(types(allHook)).toEqual(expect.arrayContaining(['customer.created', 'product.created', 'edition.created', 'license.created']));
    // Its own creation is not sent to an endpoint; the later ones' are, to "*".
    expect(allHook.got.filter((r) => r.json.type === 'webhook.created').map((r) => r.json.subject.id)).toEqual([decodeGlobalID(off.endpoint.id).id]);
    expect(offHook.got).toHaveLength(0);
    expect(await s.db.prisma.webhookDelivery.count({ where: { endpointId: decodeGlobalID(off.endpoint.id).id } })).toBe(0);
    // A test to a disabled endpoint is refused.
    expect(ok(await s.gql(TEST, { id: off.endpoint.id }, { token: tenant.token })).sendTestWebhook.__typename).toBe('ConflictError');

    // Re-enabled: the customers created while it was off are not sent, the next one is.
    const upd = ok(await s.gql(UPDATE, { input: { id: off.endpoint.id, enabled: true, eventTypes: ['customer.*'] } }, { token: tenant.token }));
    expect(upd.updateWebhookEndpoint).toMatchObject({ enabled: true, eventTypes: ['customer.*'] });
    const id = await customer(tenant.token, 'After Enable');
    const got = await waitFor('the customer created after enabling', () => offHook.got.find((r) => r.json.type === 'customer.created'));
    expect(got.json.subject.id).toBe(id);
    await waitFor('the catch-all to see the same customer', () => allHook.got.find((r) => r.json.subject.id === id));
    expect(offHook.got.map((r) => r.json.subject.id)).toEqual([id]);

    // Disabled again: nothing more, while the catch-all keeps receiving.
    ok(await s.gql(UPDATE, { input: { id: off.endpoint.id, enabled: false } }, { token: tenant.token }));
    const later = await customer(tenant.token, 'While Off');
    await waitFor('the catch-all to see it', () => allHook.got.find((r) => r.json.subject.id === later));
    expect(offHook.got).toHaveLength(1);
    expect(licenses.endpoint.id).not.toBe(customers.endpoint.id);
  });
});

describe('events raised while an endpoint was disabled', () => {
  const MISSED = `query($id: ID!) { webhookEndpoint(id: $id) { enabled missedEvents } }`;
  const missed = async (token: string, id: string) => ok(await s.gql(MISSED, { id }, { token })).webhookEndpoint.missedEvents as number | null;
  const update = async (token: string, input: Record<string, unknown>) =>
    ok(await s.gql(`mutation($input: UpdateWebhookEndpointInput!) { updateWebhookEndpoint(input: $input) { __typename ... on WebhookEndpoint { enabled } ... on ValidationError { fields { path message } } } }`, { input }, { token }))
      .updateWebhookEndpoint;

  it('are counted while it is off and, enabled with sendMissed, sent once each, oldest first, then what follows', async () => {
    const tenant = await s.tenant();
    const hook = await listen();
    const e = await endpoint(tenant.token, { url: hook.url, eventTypes: ['customer.*'] });
    const id = e.endpoint.id;
    const before = await customer(tenant.token, 'Before');
    await waitFor('the customer made before', () => hook.got.find((r) => r.json.subject.id === before));
    expect(await missed(tenant.token, id)).toBeNull();

    expect((await update(tenant.token, { id, enabled: false })).enabled).toBe(false);
    const whileOff = [await customer(tenant.token, 'Off 1'), await customer(tenant.token, 'Off 2'), await customer(tenant.token, 'Off 3')];
    await issue(s, tenant.token, {}); // product, edition, license: not of its types
    // Sealed a moment after their commits: counted then, of its types only.
    await waitFor('three missed', async () => (await missed(tenant.token, id)) === 3);

    // Only when enabling a disabled endpoint; refused, it changes nothing.
    const refused = await update(tenant.token, { id, sendMissed: true });
    expect(refused.__typename).toBe('ValidationError');
    expect(refused.fields[0].path).toBe('sendMissed');
    const other = await endpoint(tenant.token, { url: hook.url, eventTypes: ['license.*'] });
    expect((await update(tenant.token, { id: other.endpoint.id, enabled: true, sendMissed: true })).__typename).toBe('ValidationError');
    expect(await missed(tenant.token, id)).toBe(3);

    expect(await update(tenant.token, { id, enabled: true, sendMissed: true })).toMatchObject({ __typename: 'WebhookEndpoint', enabled: true });
    expect(await missed(tenant.token, id)).toBeNull();
    const after = await customer(tenant.token, 'After');
    await waitFor('all four', () => [...whileOff, after].every((c) => hook.got.some((r) => r.json.subject.id === c)));
    const sent = hook.got.filter((r) => r.json.type === 'customer.created').map((r) => r.json.subject.id);
    expect(sent.sort()).toEqual([before, ...whileOff, after].sort());
    // In the order they were raised (its deliveries were queued together, oldest first).
    const queued = await s.db.prisma.webhookDelivery.findMany({ where: { endpointId: decodeGlobalID(id).id, eventType: 'customer.created' }, orderBy: { eventSeq: 'asc' } });
    expect(queued.map((d) => JSON.parse(d.body).subject.id)).toEqual([before, ...whileOff, after]);
    const updated = await s.db.prisma.auditEvent.findMany({ where: { tenantId: tenant.id, type: 'webhook.updated', subjectId: decodeGlobalID(id).id }, orderBy: { id: 'asc' } });
    expect(updated.map((u) => (u.payload as { missedEventsSent?: number }).missedEventsSent)).toEqual([undefined, 3]);
  });

  it('enabled without sendMissed, it starts from now; with too many missed, sendMissed is refused', async () => {
    const tenant = await s.tenant();
    const hook = await listen();
    const e = await endpoint(tenant.token, { url: hook.url, eventTypes: ['customer.*'], enabled: false });
    const id = e.endpoint.id;
    await customer(tenant.token, 'Off');
    await waitFor('one missed', async () => (await missed(tenant.token, id)) === 1);
    // More events after its cursor than can be sent again (written straight into the log, as sealed).
    const { cursor } = await s.db.prisma.webhookEndpoint.findUniqueOrThrow({ where: { id: decodeGlobalID(id).id } });
    const { seq: head } = await s.db.prisma.auditChainHead.findUniqueOrThrow({ where: { tenantId: tenant.id } });
    expect(head).toBeGreaterThan(cursor);
    await s.db.prisma.$executeRawUnsafe(
      `INSERT INTO "AuditEvent" ("tenantId", type, "actorType", "subjectType", "subjectId", payload, seq, "prevHash", hash)
       SELECT $1::uuid, 'customer.updated', 'system', 'Customer', 'bulk', '{}'::jsonb, $2::bigint + g, '', '' FROM generate_series(1, $3::int) g`,
      tenant.id,
      head,
      MAX_MISSED_EVENTS,
    );
    // The chain goes on after them (this tenant's chain is not verified: its bulk rows carry no hashes).
    await s.db.prisma.auditChainHead.update({ where: { tenantId: tenant.id }, data: { seq: head + BigInt(MAX_MISSED_EVENTS) } });
    expect(await missed(tenant.token, id)).toBeNull();
    const refused = await update(tenant.token, { id, enabled: true, sendMissed: true });
    expect(refused.__typename).toBe('ValidationError');
    expect(refused.fields[0].message).toMatch(/too many to send again/);
    expect((await s.db.prisma.webhookEndpoint.findUniqueOrThrow({ where: { id: decodeGlobalID(id).id } })).enabled).toBe(false);
    // Enabled from now: nothing of before is queued.
    expect((await update(tenant.token, { id, enabled: true })).enabled).toBe(true);
    expect(await s.db.prisma.webhookDelivery.count({ where: { endpointId: decodeGlobalID(id).id } })).toBe(0);
  });
});

describe('a test event or a replay is one delivery, whatever the endpoint subscribes to', () => {
  /**
   * Everything the endpoint will ever be sent for what happened so far: the audit rows written by then are
   * sealed, the dispatcher has moved the endpoint's cursor past them (turning the ones it matches into
   * deliveries in the same transaction) and every delivery is over. What the receiver holds then is all it gets.
   */
  async function settled(tenantId: string, endpointId: string) {
    const id = decodeGlobalID(endpointId).id;
    const last = await s.db.prisma.auditEvent.findFirstOrThrow({ where: { tenantId }, orderBy: { id: 'desc' }, select: { id: true } });
    const sealed = await waitFor('the audit rows sealed', async () => {
      const row = await s.db.prisma.auditEvent.findUniqueOrThrow({ where: { id: last.id }, select: { seq: true } });
      return row.seq;
    });
    await waitFor('the dispatcher past them', async () => {
      const ep = await s.db.prisma.webhookEndpoint.findUniqueOrThrow({ where: { id }, select: { cursor: true } });
      return BigInt(ep.cursor) >= sealed;
    });
    for (const d of dispatchersOf(s.app.deps)) await d.runOnce();
    await waitFor('every delivery over', async () => (await s.db.prisma.webhookDelivery.count({ where: { endpointId: id, status: 'PENDING' } })) === 0);
    for (const d of dispatchersOf(s.app.deps)) await d.idle();
  }

  // [] and "*": all events; "webhook.*" and "webhook.test_sent" name the test's own audit event; the last names neither.
  for (const eventTypes of [[], ['*'], ['webhook.*'], ['webhook.test_sent', 'customer.created'], ['customer.created']]) {
    it(`"Send test event" to an endpoint subscribed to ${JSON.stringify(eventTypes)} makes exactly one delivery`, async () => {
      const tenant = await s.tenant();
      const hook = await listen();
      const e = await endpoint(tenant.token, { url: hook.url, eventTypes });
      await settled(tenant.id, e.endpoint.id);
      expect(hook.got).toHaveLength(0);

      const r = ok(await s.gql(TEST, { id: e.endpoint.id }, { token: tenant.token }));
      expect(r.sendTestWebhook).toMatchObject({ __typename: 'WebhookDelivery', eventType: 'webhook.test' });
      await waitFor('the test request', () => hook.got.length > 0);
      await settled(tenant.id, e.endpoint.id);
      expect(hook.got.map((x) => x.json.type)).toEqual(['webhook.test']);
      const log = await deliveries(tenant.token, e.endpoint.id);
      expect(log.map((d) => [d.eventType, d.status])).toEqual([['webhook.test', 'SUCCEEDED']]);
      // The audit log still says a test was sent.
      expect(await s.db.prisma.auditEvent.count({ where: { tenantId: tenant.id, type: 'webhook.test_sent' } })).toBe(1);
    });
  }

  it('a replay to an endpoint subscribed to all events makes exactly one delivery: the event again', async () => {
    const tenant = await s.tenant();
    const hook = await listen();
    const e = await endpoint(tenant.token, { url: hook.url, eventTypes: ['*'] });
    const customerId = await customer(tenant.token, 'Replayed Co');
    await settled(tenant.id, e.endpoint.id);
    expect(hook.got.map((x) => x.json.type)).toEqual(['customer.created']);
    const [original] = await deliveries(tenant.token, e.endpoint.id);

    const r = ok(await s.gql(REPLAY, { id: original!.id }, { token: tenant.token }));
    expect(r.replayWebhookDelivery).toMatchObject({ __typename: 'WebhookDelivery', replayOfId: original!.id });
    await waitFor('the replayed request', () => hook.got.length > 1);
    await settled(tenant.id, e.endpoint.id);
    expect(hook.got.map((x) => [x.json.type, x.json.subject.id])).toEqual([
      ['customer.created', customerId],
      ['customer.created', customerId],
    ]);
    expect((await deliveries(tenant.token, e.endpoint.id)).map((d) => d.eventType)).toEqual(['customer.created', 'customer.created']);
  });

  it("another endpoint of the tenant subscribed to all events is still told of the test (once), as of any change", async () => {
    const tenant = await s.tenant();
    const [tested, watcher] = await Promise.all([listen(), listen()]);
    const t = await endpoint(tenant.token, { url: tested.url, eventTypes: ['*'] });
    const w = await endpoint(tenant.token, { url: watcher.url, eventTypes: ['webhook.*'] });
    await settled(tenant.id, t.endpoint.id);
    await settled(tenant.id, w.endpoint.id);
    // The watcher's creation, sent to the tested endpoint ("*"); the watcher is not sent its own.
    expect(tested.got.map((x) => x.json.type)).toEqual(['webhook.created']);
    expect(watcher.got).toHaveLength(0);

    ok(await s.gql(TEST, { id: t.endpoint.id }, { token: tenant.token }));
    await waitFor('the test request', () => tested.got.length > 1);
    await settled(tenant.id, t.endpoint.id);
    await settled(tenant.id, w.endpoint.id);
    expect(tested.got.map((x) => x.json.type)).toEqual(['webhook.created', 'webhook.test']);
    expect(watcher.got.map((x) => [x.json.type, x.json.subject.id])).toEqual([['webhook.test_sent', decodeGlobalID(t.endpoint.id).id]]);
  });
});

describe('tenant isolation and roles', () => {
  it("never shows, changes or replays another tenant's endpoints and deliveries, nor sends it their events", async () => {
    const a = await s.tenant();
    const b = await s.tenant();
    const hookA = await listen();
    const epA = await endpoint(a.token, { url: hookA.url });
    await customer(a.token, 'A customer');
    await customer(b.token, 'B customer');
    const [dA] = await waitFor('A delivery', async () => {
      const list = await deliveries(a.token, epA.endpoint.id, 'SUCCEEDED');
      return list.some((d) => d.eventType === 'customer.created') && list;
    });
    expect(hookA.got.every((r) => r.json.tenant.id === a.id)).toBe(true);

    expect(ok(await s.gql(LIST, {}, { token: b.token })).webhookEndpoints.totalCount).toBe(0);
    expect(ok(await s.gql(DELIVERIES, { id: epA.endpoint.id }, { token: b.token })).webhookEndpoint).toBeNull();
    // An id cut short (a link pasted in part) names no endpoint either, with its deliveries asked for too.
    for (const id of [epA.endpoint.id.slice(0, -6), 'garbage']) expect(ok(await s.gql(DELIVERIES, { id }, { token: a.token })).webhookEndpoint, id).toBeNull();
    const node = ok(await s.gql(`query($id: ID!) { node(id: $id) { id } }`, { id: epA.endpoint.id }, { token: b.token }));
    expect(node.node).toBeNull();
    const dnode = ok(await s.gql(`query($id: ID!) { node(id: $id) { id } }`, { id: dA!.id }, { token: b.token }));
    expect(dnode.node).toBeNull();
    expect(ok(await s.gql(UPDATE, { input: { id: epA.endpoint.id, enabled: false } }, { token: b.token })).updateWebhookEndpoint.__typename).toBe('NotFoundError');
    expect(ok(await s.gql(ROTATE, { input: { id: epA.endpoint.id } }, { token: b.token })).rotateWebhookSecret.__typename).toBe('NotFoundError');
    expect(ok(await s.gql(TEST, { id: epA.endpoint.id }, { token: b.token })).sendTestWebhook.__typename).toBe('NotFoundError');
    expect(ok(await s.gql(REPLAY, { id: dA!.id }, { token: b.token })).replayWebhookDelivery.__typename).toBe('NotFoundError');
    expect(ok(await s.gql(DELETE, { id: epA.endpoint.id }, { token: b.token })).deleteWebhookEndpoint.__typename).toBe('NotFoundError');
    const still = await s.db.prisma.webhookEndpoint.findUniqueOrThrow({ where: { id: decodeGlobalID(epA.endpoint.id).id } });
    expect(still.enabled).toBe(true);
    expect(await s.db.prisma.webhookDelivery.count({ where: { tenantId: a.id, replayOfId: { not: null } } })).toBe(0);
  });

  it('lets READ_ONLY and SUPPORT read; only ADMIN and OWNER manage', async () => {
    const t = await s.tenant();
    const hook = await listen();
    const ep = await endpoint(t.token, { url: hook.url, eventTypes: ['customer.created'] });
    for (const role of ['READ_ONLY', 'SUPPORT']) {
      const token = await roleToken(t.token, role);
      expect(ok(await s.gql(LIST, {}, { token })).webhookEndpoints.totalCount).toBe(1);
      const denied = await s.gql(CREATE, { input: { url: hook.url } }, { token });
      expect(denied.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
      const test = await s.gql(TEST, { id: ep.endpoint.id }, { token });
      expect(test.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    }
    const admin = await roleToken(t.token, 'ADMIN');
    expect(ok(await s.gql(UPDATE, { input: { id: ep.endpoint.id, description: 'by admin' } }, { token: admin })).updateWebhookEndpoint.description).toBe('by admin');
    expect((await s.gql(LIST, {})).errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');

    const del = ok(await s.gql(DELETE, { id: ep.endpoint.id }, { token: admin }));
    expect(del.deleteWebhookEndpoint.deletedId).toBe(ep.endpoint.id);
    expect(ok(await s.gql(LIST, {}, { token: t.token })).webhookEndpoints.totalCount).toBe(0);
    const audit = await s.db.prisma.auditEvent.findMany({ where: { tenantId: t.id, type: { startsWith: 'webhook.' } }, orderBy: { id: 'asc' } });
    expect(audit.map((e) => e.type)).toEqual(['webhook.created', 'webhook.updated', 'webhook.deleted']);
    expect(audit[1]!.payload).toEqual({ changes: { description: { from: null, to: 'by admin' } } });
  });
});

describe('validation', () => {
  it('refuses bad input with a ValidationError and changes nothing', async () => {
    const t = await s.tenant();
    const hook = await listen();
    const ep = await endpoint(t.token, { url: hook.url, eventTypes: ['license.*'] });
    const snapshot = async () => ({
      // The cursor moves on its own (the dispatcher reads the log); everything else must stay as it was.
      endpoints: (await s.db.prisma.webhookEndpoint.findMany({ where: { tenantId: t.id }, orderBy: { id: 'asc' } })).map(({ cursor: _, ...e }) => e),
      audit: await s.db.prisma.auditEvent.count({ where: { tenantId: t.id } }),
    });
    const before = await snapshot();
    const bad: [Record<string, unknown>, string][] = [
      [{ url: 'not a url' }, 'url'],
      [{ url: 'ftp://example.com/hook' }, 'url'],
      [{ url: 'https://user:pw@example.com/hook' }, 'url'],
      [{ url: `https://example.com/${'x'.repeat(2100)}` }, 'url'],
      [{ url: hook.url, eventTypes: ['licence.created'] }, 'eventTypes.0'],
      [{ url: hook.url, eventTypes: ['license.*', 'license.*.x'] }, 'eventTypes.1'],
      [{ url: hook.url, eventTypes: ['LICENSE.CREATED'] }, 'eventTypes.0'],
      // A known resource, a misspelt action: it would receive nothing, silently.
      [{ url: hook.url, eventTypes: ['license.*', 'license.craeted'] }, 'eventTypes.1'],
      [{ url: hook.url, eventTypes: Array.from({ length: 101 }, () => 'license.created') }, 'eventTypes'],
      [{ url: hook.url, description: 'x'.repeat(100_000) }, 'description'],
    ];
    for (const [input, path] of bad) {
      const r = ok(await s.gql(CREATE, { input }, { token: t.token }));
      expect(r.createWebhookEndpoint.__typename, JSON.stringify(input).slice(0, 80)).toBe('ValidationError');
      expect(r.createWebhookEndpoint.fields.map((f: { path: string }) => f.path)).toContain(path);
    }
    for (const [input, path] of bad.slice(0, 3)) {
      const r = ok(await s.gql(UPDATE, { input: { id: ep.endpoint.id, ...input } }, { token: t.token }));
      expect(r.updateWebhookEndpoint.__typename).toBe('ValidationError');
      expect(r.updateWebhookEndpoint.fields.map((f: { path: string }) => f.path)).toContain(path);
    }
    const badId = ok(await s.gql(UPDATE, { input: { id: 'nope', enabled: false } }, { token: t.token }));
    expect(badId.updateWebhookEndpoint.__typename).toBe('ValidationError');
    const badRotate = ok(await s.gql(ROTATE, { input: { id: ep.endpoint.id, keepPreviousForHours: 1000 } }, { token: t.token }));
    expect(badRotate.rotateWebhookSecret.__typename).toBe('ValidationError');
    expect(await snapshot()).toEqual(before);
  });

  it('offers (webhookEventTypes) and accepts every event type the server emits, from the one list', async () => {
    const t = await s.tenant();
    const r = ok(await s.gql('{ webhookEventTypes }', {}, { token: t.token }));
    expect(r.webhookEventTypes).toEqual([...EVENT_TYPES]);
    // Types the console's hints used to lack (written by the catalog and the compliance sweeps).
    expect(r.webhookEventTypes).toEqual(expect.arrayContaining(['edition.archived', 'product.updated', 'compliance.license_expiring', 'compliance.heartbeat_timeout']));
    const hook = await listen();
    const ep = await endpoint(t.token, { url: hook.url, eventTypes: [...EVENT_TYPES] });
    expect(ep.endpoint.eventTypes).toEqual([...EVENT_TYPES].sort());
  });

  it(`refuses more than ${MAX_ENDPOINTS_PER_TENANT} endpoints per tenant`, async () => {
    const t = await s.tenant();
    const ctx: ServiceContext = { app: s.app.deps, prisma: s.app.deps.prisma, actor: { kind: 'token', tenantId: t.id, tokenId: 'test', role: 'OWNER' }, requestId: 'test' };
    for (let i = 1; i < MAX_ENDPOINTS_PER_TENANT; i++) await createEndpoint(ctx, { url: `http://127.0.0.1:9/hook-${i}`, eventTypes: ['license.created'], enabled: false });
    // The last free place, taken by two at once: one wins.
    const results = await Promise.all(
      [1, 2].map(() => s.gql(CREATE, { input: { url: 'http://127.0.0.1:9/last', eventTypes: ['license.created'], enabled: false } }, { token: t.token })),
    );
    expect(results.map((r) => ok(r).createWebhookEndpoint.__typename).sort()).toEqual(['CreateWebhookEndpointPayload', 'ValidationError']);
    expect(await s.db.prisma.webhookEndpoint.count({ where: { tenantId: t.id } })).toBe(MAX_ENDPOINTS_PER_TENANT);
  });

  it('in production: https only, and never to loopback, private or link-local addresses', async () => {
    const t = await s.tenant();
    const production = { ...s.app.deps, config: { ...s.app.deps.config, production: true } };
    const ctx: ServiceContext = { app: production, prisma: s.app.deps.prisma, actor: { kind: 'token', tenantId: t.id, tokenId: 'test', role: 'OWNER' }, requestId: 'test' };
    for (const url of [
      'http://example.com/hook',
      'https://127.0.0.1/hook',
      'https://localhost/hook',
      'https://[::1]/hook',
      'https://10.0.0.8/hook',
      'https://172.20.1.1/hook',
      'https://192.168.1.10/hook',
      'https://169.254.169.254/latest/meta-data',
      'https://[fd00::1]/hook',
      'https://[::ffff:127.0.0.1]/hook',
      'https://100.64.0.1/hook',
      'https://0.0.0.0/hook',
    ]) {
      await expect(createEndpoint(ctx, { url }), url).rejects.toMatchObject({ name: 'ValidationError', fields: [{ path: 'url' }] });
    }
    expect(await s.db.prisma.webhookEndpoint.count({ where: { tenantId: t.id } })).toBe(0);

    expect(['8.8.8.8', '2606:4700:4700::1111', '93.184.216.34'].map(isPrivateAddress)).toEqual([false, false, false]);
    expect(['127.0.0.1', '::1', '10.1.1.1', '169.254.1.1', 'fe80::1', '::ffff:10.0.0.1', '::ffff:7f00:1', 'not-an-ip'].map(isPrivateAddress)).toEqual([
      true, true, true, true, true, true, true, true,
    ]);

    // At send time too: a stored URL that points at a private address is refused without connecting.
    const hook = await listen();
    const r = await postWebhook(hook.url.replace('http:', 'https:'), '{}', {}, { timeoutMs: 2_000, production: true });
    expect(r.ok).toBe(false);
    expect(r.error).toMatch(/refused/);
    expect(hook.got).toHaveLength(0);
  });
});

describe('durability', () => {
  it('delivers what was committed while no dispatcher ran, and retries an attempt whose dispatcher died', async () => {
    const t = await s.tenant();
    const hook = await listen();
    const ep = await endpoint(t.token, { url: hook.url, eventTypes: ['customer.created'] });
    // Down: the app's dispatcher stops (as an instance that crashed); events keep being committed and sealed.
    for (const d of dispatchersOf(s.app.deps)) await d.stop();
    const ids = [await customer(t.token, 'While down 1'), await customer(t.token, 'While down 2')];
    await waitFor('the events to be sealed', async () => (await s.db.prisma.auditEvent.count({ where: { tenantId: t.id, type: 'customer.created', seq: { not: null } } })) === 2);
    expect(await s.db.prisma.webhookDelivery.count({ where: { endpointId: decodeGlobalID(ep.endpoint.id).id } })).toBe(0);

    // Back up: a new dispatcher finds them from the audit log.
    const restarted = startDispatcher(s.app.deps);
    await waitFor('both deliveries', () => hook.got.length >= 2);
    expect(hook.got.map((r) => r.json.subject.id).sort()).toEqual([...ids].sort());

    // An attempt claimed by a dispatcher that died: once the claim lapses, another one retries it.
    const endpointId = decodeGlobalID(ep.endpoint.id).id;
    const orphan = await s.db.prisma.webhookDelivery.create({
      data: {
        tenantId: t.id,
        endpointId,
        eventId: 'orphan-1',
        eventType: 'customer.created',
        body: JSON.stringify({ id: 'orphan-1', type: 'customer.created' }),
        attempts: 1,
        claimToken: '00000000-0000-4000-8000-000000000001',
        nextAttemptAt: new Date(Date.now() - 1000),
      },
    });
    restarted.wake();
    await waitFor('the orphaned delivery to succeed', async () => (await s.db.prisma.webhookDelivery.findUniqueOrThrow({ where: { id: orphan.id } })).status === 'SUCCEEDED');
    expect(hook.got.filter((r) => r.json.id === 'orphan-1')).toHaveLength(1);
    expect((await s.db.prisma.webhookDelivery.findUniqueOrThrow({ where: { id: orphan.id } })).attempts).toBe(2);
  });

  it('stops cleanly with an attempt in flight: hands it back untried', async () => {
    const t = await s.tenant();
    let release: () => void = () => {};
    const hanging = await listen(() => new Promise<number>((resolve) => (release = () => resolve(200))));
    const ep = await endpoint(t.token, { url: hanging.url, eventTypes: ['customer.created'] });
    const endpointId = decodeGlobalID(ep.endpoint.id).id;
    const own = startDispatcher(s.app.deps);
    await customer(t.token, 'Hangs');
    await waitFor('an attempt in flight', async () => (await s.db.prisma.webhookDelivery.findFirst({ where: { endpointId, attempts: 1, claimToken: { not: null } } })));
    // Every dispatcher of the app stops (as on SIGTERM); the receiver never answers in time.
    await Promise.all(dispatchersOf(s.app.deps).map((d) => d.stop()));
    const row = await s.db.prisma.webhookDelivery.findFirstOrThrow({ where: { endpointId } });
    expect(row).toMatchObject({ status: 'PENDING', attempts: 0, claimToken: null });
    release();
    expect(own).toBeTruthy();
    startDispatcher(s.app.deps);
  });
});

describe('a long retry schedule', () => {
  it('keeps waiting at most a day between attempts, however many are configured', async () => {
    // TESSERA_WEBHOOK_MAX_ATTEMPTS=40: after attempt 36 the 3x schedule (50 ms * 3^35) is past any date.
    const long = await startTestServer({ env: { ...ENV, TESSERA_WEBHOOK_MAX_ATTEMPTS: '40' } });
    try {
      const t = await long.tenant();
      const down = await listen(() => 503);
      const created = ok(await long.gql(CREATE, { input: { url: down.url, eventTypes: ['customer.created'] } }, { token: t.token }));
      const endpointId = decodeGlobalID(created.createWebhookEndpoint.endpoint.id).id;
      ok(await long.gql(CREATE_CUSTOMER, { name: 'Down for weeks' }, { token: t.token }));
      const delivery = await waitFor('the first attempt', () => long.db.prisma.webhookDelivery.findFirst({ where: { endpointId, attempts: { gte: 1 } } }));
      // As if 35 attempts had failed over the weeks before: the next one is the 36th.
      await waitFor('the delivery between attempts', async () => {
        const n = await long.db.prisma.webhookDelivery.updateMany({ where: { id: delivery.id, claimToken: null }, data: { attempts: 35, nextAttemptAt: new Date() } });
        return n.count === 1;
      });
      for (const d of dispatchersOf(long.app.deps)) d.wake();
      const after = await waitFor('the 36th attempt recorded', async () => {
        const row = await long.db.prisma.webhookDelivery.findUniqueOrThrow({ where: { id: delivery.id } });
        return row.attempts >= 36 && row.claimToken === null && row;
      }, 20_000);
      expect(after.status).toBe('PENDING');
      expect(after.nextAttemptAt!.getTime()).toBeLessThanOrEqual(Date.now() + 24 * 3_600_000);
      expect(await long.db.prisma.webhookAttempt.count({ where: { deliveryId: delivery.id, number: 36, succeeded: false } })).toBe(1);
    } finally {
      await Promise.all(dispatchersOf(long.app.deps).map((d) => d.stop()));
      await long.close();
    }
  });
});

describe('fairness', () => {
  it("a slow receiver with a backlog holds a few of the dispatcher's places, not all: other tenants are still served", async () => {
    // Attempts may take a minute here: a receiver that never answers holds its places that long.
    const slow = await startTestServer({ env: { ...ENV, TESSERA_WEBHOOK_TIMEOUT_MS: '60000' } });
    const held: (() => void)[] = [];
    let released = false;
    try {
      const a = await slow.tenant();
      const b = await slow.tenant();
      const stuck = await listen(() => (released ? 200 : new Promise<number>((resolve) => held.push(() => resolve(200)))));
      const fine = await listen();
      ok(await slow.gql(CREATE, { input: { url: stuck.url, eventTypes: ['customer.created'] } }, { token: a.token }));
      ok(await slow.gql(CREATE, { input: { url: fine.url, eventTypes: ['customer.created'] } }, { token: b.token }));
      // More events than the dispatcher has places (16).
      for (let i = 0; i < 20; i++) ok(await slow.gql(CREATE_CUSTOMER, { name: `Backlog ${i}` }, { token: a.token }));
      await waitFor('the slow receiver to hold requests', () => held.length >= 4);
      ok(await slow.gql(CREATE_CUSTOMER, { name: 'Elsewhere' }, { token: b.token }));
      const got = await waitFor("the other tenant's event", () => fine.got.find((r) => r.json.tenant.id === b.id), 20_000);
      expect(got.json.type).toBe('customer.created');
      expect(held.length).toBe(4);
    } finally {
      released = true;
      for (const answer of held) answer();
      await Promise.all(dispatchersOf(slow.app.deps).map((d) => d.stop()));
      await slow.close();
    }
  });
});

describe('several dispatchers on one database', () => {
  async function exactlyOnce(server: TestServer, tokens: { gql: TestServer['gql']; token: string }[], hook: Receiver, tenantId: string, endpointId: string) {
    const N = 30;
    await Promise.all(
      Array.from({ length: N }, async (_, i) => {
        const via = tokens[i % tokens.length]!;
        const r = ok(await via.gql(CREATE_CUSTOMER, { name: `Race ${i}` }, { token: via.token }));
        expect(r.createCustomer.__typename).toBe('Customer');
      }),
    );
    await waitFor('every delivery to succeed', async () => {
      const done = await server.db.prisma.webhookDelivery.count({ where: { endpointId, status: 'SUCCEEDED' } });
      return done >= N;
    }, 120_000);
    const rows = await server.db.prisma.webhookDelivery.findMany({ where: { endpointId } });
    expect(rows).toHaveLength(N);
    expect(rows.every((r) => r.attempts === 1)).toBe(true);
    expect(hook.got).toHaveLength(N);
    expect(new Set(hook.got.map((r) => r.json.id)).size).toBe(N);
    expect(hook.got.every((r) => r.json.tenant.id === tenantId)).toBe(true);
  }

  it('two dispatcher loops on one database never deliver an event twice', async () => {
    const t = await s.tenant();
    const hook = await listen(async () => {
      await new Promise((r) => setTimeout(r, 20));
      return 200;
    });
    const ep = await endpoint(t.token, { url: hook.url, eventTypes: ['customer.created'] });
    const extra = [startDispatcher(s.app.deps, { tickMs: 100 }), startDispatcher(s.app.deps, { tickMs: 100 })];
    try {
      await exactlyOnce(s, [{ gql: s.gql, token: t.token }], hook, t.id, decodeGlobalID(ep.endpoint.id).id);
    } finally {
      await Promise.all(extra.map((d) => d.stop()));
    }
  });

  describe.skipIf(!testDatabaseUrl)('two app instances on one PostgreSQL', () => {
    let fresh: Awaited<ReturnType<typeof freshPostgres>>;
    let one: TestServer;
    let two: TestServer;
    beforeAll(async () => {
      fresh = await freshPostgres(testDatabaseUrl!);
      one = await startTestServer({ databaseUrl: fresh.url, env: ENV });
      two = await startTestServer({ databaseUrl: fresh.url, env: ENV });
    }, 120_000);
    afterAll(async () => {
      await one?.close();
      await two?.close();
      await fresh?.drop();
    });

    it('never deliver one event twice', async () => {
      const t = await one.tenant();
      const hook = await listen(async () => {
        await new Promise((r) => setTimeout(r, 20));
        return 200;
      });
      const r = ok(await one.gql(CREATE, { input: { url: hook.url, eventTypes: ['customer.created'] } }, { token: t.token }));
      const endpointId = decodeGlobalID(r.createWebhookEndpoint.endpoint.id).id;
      await exactlyOnce(one, [{ gql: one.gql, token: t.token }, { gql: two.gql, token: t.token }], hook, t.id, endpointId);
    });
  });
});

describe('attempts in flight, counted across instances', () => {
  // Two instances on one database: on PostgreSQL two apps (their own pools and dispatchers) on a fresh
  // database; on PGlite (one process only) one app and a second dispatcher beside its own. Each passes
  // on demand here (runOnce), both at once, so the limits are held by the claim, not by timing.
  let one: TestServer;
  let two: TestServer | undefined;
  let fresh: Awaited<ReturnType<typeof freshPostgres>> | undefined;
  let instances: ReturnType<typeof startDispatcher>[];
  const slowEnv = { ...ENV, TESSERA_WEBHOOK_TIMEOUT_MS: '120000' };

  beforeAll(async () => {
    if (testDatabaseUrl) {
      fresh = await freshPostgres(testDatabaseUrl);
      one = await startTestServer({ databaseUrl: fresh.url, env: slowEnv });
      two = await startTestServer({ databaseUrl: fresh.url, env: slowEnv });
      instances = [dispatchersOf(one.app.deps)[0]!, dispatchersOf(two.app.deps)[0]!];
    } else {
      one = await startTestServer({ env: slowEnv });
      instances = [dispatchersOf(one.app.deps)[0]!, startDispatcher(one.app.deps)];
    }
  }, 120_000);
  afterAll(async () => {
    for (const server of [one, two]) if (server) await Promise.all(dispatchersOf(server.app.deps).map((d) => d.stop()));
    await one?.close();
    await two?.close();
    await fresh?.drop();
  });

  /** A receiver that holds every request until released, and counts the requests it holds at once, per path. */
  async function holding() {
    const held: (() => void)[] = [];
    const now = new Map<string, number>();
    const most = new Map<string, number>();
    let total = 0;
    let mostTotal = 0;
    let released = false;
    const server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        const path = req.url ?? '/';
        now.set(path, (now.get(path) ?? 0) + 1);
        most.set(path, Math.max(most.get(path) ?? 0, now.get(path)!));
        mostTotal = Math.max(mostTotal, ++total);
        const answer = () => {
          now.set(path, now.get(path)! - 1);
          total -= 1;
          res.writeHead(200).end('ok');
        };
        if (released) answer();
        else held.push(answer);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    receivers.push({ url: '', got: [], close: () => new Promise<void>((resolve) => server.close(() => resolve())) });
    const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    return {
      url: (path: string) => `${base}${path}`,
      held: () => total,
      most: (path: string) => most.get(path) ?? 0,
      mostTotal: () => mostTotal,
      release() {
        released = true;
        for (const answer of held.splice(0)) answer();
      },
    };
  }

  const inFlight = (where: { endpointId?: string; tenantId?: string }) =>
    one.db.prisma.webhookDelivery.count({ where: { ...where, status: 'PENDING', claimToken: { not: null } } });
  const passes = async () => {
    await Promise.all(instances.map((d) => d.runOnce()));
    for (const d of instances) await d.runOnce();
  };
  const create = async (token: string, path: string, url: string) => {
    const r = ok(await one.gql(CREATE, { input: { url, eventTypes: ['customer.created'], description: path } }, { token }));
    return decodeGlobalID(r.createWebhookEndpoint.endpoint.id).id;
  };

  it(`an endpoint never has more than ${PER_ENDPOINT} attempts in flight, however many instances send`, async () => {
    const t = await one.tenant();
    const hook = await holding();
    const endpointId = await create(t.token, '/one', hook.url('/one'));
    for (let i = 0; i < 12; i++) ok(await one.gql(CREATE_CUSTOMER, { name: `Held ${i}` }, { token: t.token }));
    await waitFor('the 12 deliveries queued', async () => (await one.db.prisma.webhookDelivery.count({ where: { endpointId } })) === 12 || (await passes(), false));
    await passes();
    expect(await inFlight({ endpointId })).toBe(PER_ENDPOINT);
    await waitFor('the receiver to hold them', () => hook.held() === PER_ENDPOINT);
    await passes();
    expect(await inFlight({ endpointId })).toBe(PER_ENDPOINT);
    hook.release();
    await waitFor('all 12 delivered', async () => (await one.db.prisma.webhookDelivery.count({ where: { endpointId, status: 'SUCCEEDED' } })) === 12);
    expect(hook.most('/one')).toBeLessThanOrEqual(PER_ENDPOINT);
  });

  it(`a tenant never has more than ${PER_TENANT} attempts in flight, whatever its endpoints; other tenants are still served`, async () => {
    const t = await one.tenant();
    const other = await one.tenant();
    const hook = await holding();
    const paths = ['/a', '/b', '/c'];
    const endpoints = [];
    for (const path of paths) endpoints.push(await create(t.token, path, hook.url(path)));
    const fine = await listen();
    await create(other.token, '/fine', fine.url);
    for (let i = 0; i < 5; i++) ok(await one.gql(CREATE_CUSTOMER, { name: `Busy tenant ${i}` }, { token: t.token }));
    await waitFor('the 15 deliveries queued', async () => (await one.db.prisma.webhookDelivery.count({ where: { tenantId: t.id } })) === 15 || (await passes(), false));
    await passes();
    expect(await inFlight({ tenantId: t.id })).toBe(PER_TENANT);
    for (const endpointId of endpoints) expect(await inFlight({ endpointId })).toBeLessThanOrEqual(PER_ENDPOINT);
    await waitFor('the receiver to hold them', () => hook.held() === PER_TENANT);
    // The busy tenant holds its places; another tenant's event still goes out at once.
    ok(await one.gql(CREATE_CUSTOMER, { name: 'Elsewhere' }, { token: other.token }));
    await waitFor("the other tenant's event", async () => fine.got.length === 1 || (await passes(), false));
    expect(await inFlight({ tenantId: t.id })).toBe(PER_TENANT);
    hook.release();
    await waitFor('all 15 delivered', async () => (await one.db.prisma.webhookDelivery.count({ where: { tenantId: t.id, status: 'SUCCEEDED' } })) === 15);
    expect(hook.mostTotal()).toBeLessThanOrEqual(PER_TENANT);
    for (const path of paths) expect(hook.most(path)).toBeLessThanOrEqual(PER_ENDPOINT);
  });
});

describe('retention of the delivery log', () => {
  const DAY = 86_400_000;

  /** Moves deliveries (and their attempts) back in time, as if made `days` ago. */
  async function age(ids: string[], days: number) {
    const at = new Date(Date.now() - days * DAY);
    await s.db.prisma.$executeRaw`
      UPDATE "WebhookDelivery" SET "createdAt" = ${at}::timestamp(3), "lastAttemptAt" = ${at}::timestamp(3),
        "completedAt" = CASE WHEN "completedAt" IS NULL THEN NULL ELSE ${at}::timestamp(3) END
      WHERE id = ANY(${ids}::uuid[])`;
    await s.db.prisma.$executeRaw`UPDATE "WebhookAttempt" SET "startedAt" = ${at}::timestamp(3) WHERE "deliveryId" = ANY(${ids}::uuid[])`;
  }

  /** `n` deliveries of `endpointId` that succeeded `days` ago, one attempt each (a large backlog, made in SQL). */
  async function oldDeliveries(tenantId: string, endpointId: string, n: number, days: number) {
    const at = new Date(Date.now() - days * DAY);
    await s.db.prisma.$executeRaw`
      WITH d AS (
        INSERT INTO "WebhookDelivery" (id, "tenantId", "endpointId", "eventId", "eventType", body, status, attempts, "createdAt", "completedAt")
        SELECT gen_random_uuid(), ${tenantId}::uuid, ${endpointId}::uuid, 'backlog-' || i, 'customer.created', '{}', 'SUCCEEDED', 1, ${at}::timestamp(3), ${at}::timestamp(3)
          FROM generate_series(1, ${n}::int) AS i
        RETURNING id, "tenantId", "createdAt"
      )
      INSERT INTO "WebhookAttempt" ("deliveryId", "tenantId", number, "startedAt", "durationMs", succeeded, "responseStatus")
      SELECT id, "tenantId", 1, "createdAt", 5, true, 200 FROM d`;
  }

  it('deletes deliveries over for longer than the retention period, with their attempts, in batches; never a pending one', async () => {
    const t = await s.tenant();
    const fine = await listen();
    const down = await listen(() => 503);
    const held: (() => void)[] = [];
    let release = false;
    const slow = await listen(() => (release ? 200 : new Promise<number>((resolve) => held.push(() => resolve(200)))));
    const ids = async (url: string) => decodeGlobalID((await endpoint(t.token, { url, eventTypes: ['customer.created'] })).endpoint.id).id;
    const [fineId, downId, slowId] = [await ids(fine.url), await ids(down.url), await ids(slow.url)];
    // Set-up first (the held attempts below time out after TESSERA_WEBHOOK_TIMEOUT_MS): 2,500 deliveries
    // that succeeded 35 days ago (several batches).
    await oldDeliveries(t.id, fineId, 2_500, 35);
    await customer(t.token, 'Kept for a while 1');
    await customer(t.token, 'Kept for a while 2');
    const rows = (endpointId: string) => s.db.prisma.webhookDelivery.findMany({ where: { endpointId }, orderBy: { createdAt: 'asc' } });
    await waitFor('2 deliveries succeeded, 2 failed for good, 2 in flight', async () =>
      (await s.db.prisma.webhookDelivery.count({ where: { endpointId: fineId, status: 'SUCCEEDED', eventId: { not: { startsWith: 'backlog-' } } } })) === 2 &&
      (await s.db.prisma.webhookDelivery.count({ where: { endpointId: downId, status: 'FAILED' } })) === 2 &&
      (await s.db.prisma.webhookDelivery.count({ where: { endpointId: slowId, status: 'PENDING', claimToken: { not: null } } })) === 2,
    );
    const [oldFine, recentFine] = (await rows(fineId)).filter((d) => !d.eventId.startsWith('backlog-'));
    const failed = await rows(downId);
    const pending = await rows(slowId);
    // Everything 40 days old, but one success 29 days old (inside the default 30).
    await age([oldFine!.id, ...failed.map((d) => d.id), ...pending.map((d) => d.id)], 40);
    await age([recentFine!.id], 29);
    expect(await s.db.prisma.webhookAttempt.count({ where: { deliveryId: { in: failed.map((d) => d.id) } } })).toBe(6);

    await dispatchersOf(s.app.deps)[0]!.prune();

    expect((await rows(fineId)).map((d) => d.id)).toEqual([recentFine!.id]);
    expect(await rows(downId)).toEqual([]);
    expect((await rows(slowId)).map((d) => d.id)).toEqual(pending.map((d) => d.id));
    expect(await s.db.prisma.webhookAttempt.count({ where: { deliveryId: { in: [oldFine!.id, ...failed.map((d) => d.id)] } } })).toBe(0);
    expect(await s.db.prisma.webhookAttempt.count({ where: { tenantId: t.id } })).toBe(1);

    // The pending ones were left alone: released, they complete with every attempt recorded.
    release = true;
    for (const answer of held) answer();
    const done = await waitFor('the held deliveries completed', async () => {
      const list = await rows(slowId);
      return list.every((d) => d.status !== 'PENDING') && list;
    });
    for (const d of done) expect(await s.db.prisma.webhookAttempt.count({ where: { deliveryId: d.id } })).toBe(d.attempts);
  });

  it('runs by itself in the background on every dispatcher (TESSERA_WEBHOOK_RETENTION_DAYS, default 30)', async () => {
    const t = await s.tenant();
    const hook = await listen();
    const ep = decodeGlobalID((await endpoint(t.token, { url: hook.url, eventTypes: ['customer.created'] })).endpoint.id).id;
    await oldDeliveries(t.id, ep, 3, 31);
    await oldDeliveries(t.id, ep, 2, 29);
    // A dispatcher pruning often (as every instance does, every 10 minutes).
    const pruner = startDispatcher(s.app.deps, { pruneEveryMs: 100 });
    try {
      await waitFor('the 31-day-old deliveries gone', async () => (await s.db.prisma.webhookDelivery.count({ where: { endpointId: ep } })) === 2);
      expect(await s.db.prisma.webhookAttempt.count({ where: { tenantId: t.id } })).toBe(2);
    } finally {
      await pruner.stop();
    }
  });
});
