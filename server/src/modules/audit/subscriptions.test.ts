import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ok, startTestServer, type TestServer } from '../../../test/harness.ts';
import { listen, sleep, subscribe, wsClient, type WsClient } from '../../../test/ws.ts';
import { sealerOf } from './chain.ts';

let s: TestServer;
let url: string;
const clients: WsClient[] = [];
beforeAll(async () => {
  s = await startTestServer();
  url = await listen(s.app);
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.dispose()));
  await s.close();
});

function connect(token: string | null) {
  const c = wsClient(url, token);
  clients.push(c);
  return c;
}

interface Ev {
  id: string;
  seq: number;
  type: string;
  subjectId: string;
  licenseId: string | null;
  actor: { type: string; id: string | null };
  payload: Record<string, unknown>;
  requestId: string | null;
}

const ACTIVITY = `subscription($filter: ActivityFilter, $after: ID) {
  activity(filter: $filter, after: $after) { id seq type occurredAt subjectType subjectId licenseId customerId payload requestId actor { type id } }
}`;
const CREATE_PRODUCT = `mutation($input: CreateProductInput!) { createProduct(input: $input) { __typename ... on Product { id code } } }`;

async function product(token: string, code: string, headers?: Record<string, string>) {
  const r = ok(await s.gql(CREATE_PRODUCT, { input: { name: code, code } }, { token, headers }));
  expect(r.createProduct.__typename).toBe('Product');
  return r.createProduct.id as string;
}

/** Subscribing is asynchronous on the server; without a cursor the feed starts at the chain head it reads then. */
const settle = () => sleep(300);

/** The newest sealed event of the tenant: a resume cursor that makes a test independent of subscribe timing. */
async function cursorOf(tenantId: string): Promise<string> {
  await sealerOf(s.app.deps).seal(tenantId);
  const e = await s.db.prisma.auditEvent.findFirstOrThrow({ where: { tenantId, seq: { not: null } }, orderBy: { seq: 'desc' } });
  return e.id.toString();
}

/** A new tenant with a product `code`, an edition of 3 activations and a license of it. */
async function liveLicense(code: string) {
  const t = await s.tenant();
  const productId = await product(t.token, code);
  const ed = ok(await s.gql(`mutation($input: CreateEditionInput!) { createEdition(input: $input) { __typename ... on Edition { id } } }`, {
    input: { productId, name: 'Pro', code: 'pro', licenseType: 'PERPETUAL', maxActivations: 3 },
  }, { token: t.token })).createEdition as { id: string };
  const lic = ok(await s.gql(`mutation($input: CreateLicenseInput!) { createLicense(input: $input) { __typename ... on CreateLicensePayload { license { id key } } } }`, {
    input: { editionId: ed.id },
  }, { token: t.token })).createLicense.license as { id: string; key: string };
  return { t, ed, lic };
}

describe('activity subscription over graphql-ws', () => {
  it('a bad token on connect closes the socket with 4403', async () => {
    const bad = connect('tsr_not-a-real-token');
    const sub = subscribe(bad.client, ACTIVITY);
    expect(await bad.closed).toBe(4403);
    expect(sub.items).toEqual([]);
    const none = connect(null);
    subscribe(none.client, ACTIVITY);
    expect(await none.closed).toBe(4403);
  });

  it('delivers every event of the tenant, and never another tenant\'s', async () => {
    const a = await s.tenant();
    const b = await s.tenant();
    const subA = subscribe<Ev>(connect(a.token).client, ACTIVITY, { after: await cursorOf(a.id) }, (d) => d.activity);
    const subB = subscribe<Ev>(connect(b.token).client, ACTIVITY, { after: await cursorOf(b.id) }, (d) => d.activity);
    const aIds = [await product(a.token, 'a1'), await product(a.token, 'a2')];
    const bIds = [await product(b.token, 'b1')];
    await subA.until((items) => items.length >= 2);
    await subB.until((items) => items.length >= 1);
    await sleep(200);
    expect(subA.items.map((e) => e.type)).toEqual(['product.created', 'product.created']);
    expect(subA.items.map((e) => e.subjectId)).toEqual(aIds.map(rawId));
    expect(subB.items.map((e) => e.subjectId)).toEqual(bIds.map(rawId));
    expect(subA.items[0]!.actor.type).toBe('api_token');
    const aEventIds = new Set((await s.db.prisma.auditEvent.findMany({ where: { tenantId: a.id } })).map((e) => e.id.toString()));
    for (const e of subA.items) expect(aEventIds.has(e.id)).toBe(true);
    for (const e of subB.items) expect(aEventIds.has(e.id)).toBe(false);
  });

  it('filters by type', async () => {
    const t = await s.tenant();
    const sub = subscribe<Ev>(connect(t.token).client, ACTIVITY, { filter: { types: ['customer.created'] }, after: await cursorOf(t.id) }, (d) => d.activity);
    await product(t.token, 'f1');
    ok(await s.gql(`mutation { createCustomer(input: { name: "Acme" }) { __typename } }`, {}, { token: t.token }));
    await sub.until((items) => items.length >= 1);
    await sleep(150);
    expect(sub.items.map((e) => e.type)).toEqual(['customer.created']);
  });

  it('resumes after the last event seen: missed events from the log, then live ones, no gap, no duplicate', async () => {
    const t = await s.tenant();
    const first = connect(t.token);
    const sub1 = subscribe<Ev>(first.client, ACTIVITY, { after: await cursorOf(t.id) }, (d) => d.activity);
    for (let i = 0; i < 3; i++) await product(t.token, `r${i}`);
    const seen = [...(await sub1.until((items) => items.length >= 3))];
    const last = seen[seen.length - 1]!;
    await first.dispose();

    // Missed while disconnected.
    for (let i = 3; i < 8; i++) await product(t.token, `r${i}`);
    // Reconnect while more events are being written, so replay and live delivery overlap.
    const writing = Promise.all(Array.from({ length: 12 }, (_, i) => product(t.token, `r${i + 8}`)));
    const sub2 = subscribe<Ev>(connect(t.token).client, ACTIVITY, { after: last.id }, (d) => d.activity);
    await writing;
    const resumed = await sub2.until((items) => items.length >= 17);
    await sleep(300);
    expect(sub2.items).toHaveLength(17);
    const seqs = resumed.map((e) => e.seq);
    expect(seqs).toEqual(Array.from({ length: 17 }, (_, i) => last.seq + 1 + i));
    expect(new Set(resumed.map((e) => e.id)).size).toBe(17);
    const codes = resumed.map((e) => e.payload.code).sort();
    expect(codes).toEqual(Array.from({ length: 17 }, (_, i) => `r${i + 3}`).sort());
    // And the earlier events are not sent again.
    expect(resumed.some((e) => seen.some((x) => x.id === e.id))).toBe(false);
  });

  it('activityCursor: a read-only token that has seen no event yet resumes after it and misses nothing of its time away', async () => {
    const t = await s.tenant();
    const r = ok(await s.gql(`mutation { createApiToken(input: { name: "wall screen", role: READ_ONLY }) { ... on CreateApiTokenPayload { token } } }`, {}, { token: t.token }));
    const reader: string = r.createApiToken.token;
    await sealerOf(s.app.deps).seal(t.id);
    const cursor = ok(await s.gql(`{ activityCursor }`, {}, { token: reader })).activityCursor as string;
    const newest = await s.db.prisma.auditEvent.findFirstOrThrow({ where: { tenantId: t.id, seq: { not: null } }, orderBy: { seq: 'desc' } });
    expect(cursor).toBe(newest.id.toString());
    // The socket was lost before anything reached the feed: these happen meanwhile.
    for (let i = 0; i < 3; i++) await product(t.token, `away${i}`);
    const sub = subscribe<Ev>(connect(reader).client, ACTIVITY, { after: cursor }, (d) => d.activity);
    await product(t.token, 'back');
    const items = await sub.until((xs) => xs.length >= 4);
    expect(sub.errors).toEqual([]);
    expect(items.map((e) => e.payload.code)).toEqual(['away0', 'away1', 'away2', 'back']);
    expect(items.map((e) => e.seq)).toEqual([1, 2, 3, 4].map((i) => Number(newest.seq) + i));
  });

  it('rejects a resume cursor of another tenant', async () => {
    const a = await s.tenant();
    const b = await s.tenant();
    await product(a.token, 'x');
    const evt = await s.db.prisma.auditEvent.findFirstOrThrow({ where: { tenantId: a.id }, orderBy: { id: 'desc' } });
    const sub = subscribe<Ev>(connect(b.token).client, ACTIVITY, { after: evt.id.toString() }, (d) => d.activity);
    await expect(sub.until(() => false, 3000)).rejects.toThrow(/not found/);
  });

  it('licenseLive emits the license counters on subscribe and after each event about it', async () => {
    const { t, ed, lic } = await liveLicense('live');
    const sub = subscribe<any>(connect(t.token).client, `subscription($id: ID!) { licenseLive(licenseId: $id) { licenseId activationsUsed maxActivations seats seatsInUse state eventType } }`, { id: lic.id }, (d) => d.licenseLive);
    await sub.until((items) => items.length >= 1);
    expect(sub.items[0]).toMatchObject({ licenseId: lic.id, activationsUsed: 0, maxActivations: 3, seatsInUse: 0, eventType: null });
    const act = ok(await s.gql(`mutation($input: ActivateInput!) { activate(input: $input) { __typename ... on LicensingError { code message } } }`, {
      input: { key: lic.key, fingerprint: 'device-1' },
    }));
    expect(act.activate.__typename).toBe('ActivateSuccess');
    const items = await sub.until((xs) => xs.some((x) => x.eventType === 'activation.created'));
    // The activity feed re-reads the license for subscribers that select it.
    const feed = subscribe<any>(connect(t.token).client, `subscription($after: ID) { activity(after: $after, filter: { types: ["activation.created"] }) { type license { key activationsUsed } } }`, {
      after: (await s.db.prisma.auditEvent.findFirstOrThrow({ where: { tenantId: t.id, type: 'license.created' } })).id.toString(),
    }, (d) => d.activity);
    expect((await feed.until((xs) => xs.length >= 1))[0]).toEqual({ type: 'activation.created', license: { key: lic.key, activationsUsed: 1 } });
    expect(items.find((x) => x.eventType === 'activation.created')).toMatchObject({ activationsUsed: 1, maxActivations: 3 });
    // Another license's events do not reach this feed.
    const other = ok(await s.gql(`mutation($input: CreateLicenseInput!) { createLicense(input: $input) { __typename } }`, { input: { editionId: ed.id } }, { token: t.token }));
    expect(other.createLicense.__typename).toBe('CreateLicensePayload');
    await sleep(200);
    expect(sub.items.every((x) => x.licenseId === lic.id)).toBe(true);
  });

  it("licenseLive carries a heartbeating device as it is after the heartbeat, and no device for other events", async () => {
    const { t, lic } = await liveLicense('beat');
    const act = ok(await s.gql(`mutation($input: ActivateInput!) { activate(input: $input) { __typename ... on ActivateSuccess { activation { id } } } }`, {
      input: { key: lic.key, fingerprint: 'beating', client: { hostname: 'old-name', appVersion: '1.0.0' } },
    })).activate;
    expect(act.__typename).toBe('ActivateSuccess');
    const sub = subscribe<any>(connect(t.token).client, `subscription($id: ID!) { licenseLive(licenseId: $id) { activationsUsed eventType eventOccurredAt device { id hostname platform osVersion appVersion lastHeartbeatAt } } }`, { id: lic.id }, (d) => d.licenseLive);
    await sub.until((items) => items.length >= 1);
    expect(sub.items[0]).toMatchObject({ activationsUsed: 1, eventType: null, eventOccurredAt: null, device: null });
    const beat = ok(await s.gql(`mutation($input: HeartbeatInput!) { heartbeat(input: $input) { __typename ... on HeartbeatSuccess { activation { lastHeartbeatAt } } } }`, {
      input: { key: lic.key, fingerprint: 'beating', client: { hostname: 'new-name', platform: 'linux', osVersion: '6.8', appVersion: '1.1.0' } },
    })).heartbeat;
    expect(beat.__typename).toBe('HeartbeatSuccess');
    const items = await sub.until((xs) => xs.some((x) => x.eventType === 'device.heartbeat'));
    const state = items.find((x) => x.eventType === 'device.heartbeat');
    expect(state).toMatchObject({
      activationsUsed: 1,
      device: { id: act.activation.id, hostname: 'new-name', platform: 'linux', osVersion: '6.8', appVersion: '1.1.0', lastHeartbeatAt: beat.activation.lastHeartbeatAt },
    });
    expect(Date.parse(state.eventOccurredAt)).toBe(Date.parse(beat.activation.lastHeartbeatAt));
    const gone = ok(await s.gql(`mutation($input: DeactivateInput!) { deactivate(input: $input) { __typename } }`, { input: { key: lic.key, fingerprint: 'beating' } })).deactivate;
    expect(gone.__typename).toBe('DeactivateSuccess');
    const after = await sub.until((xs) => xs.some((x) => x.eventType === 'activation.released'));
    expect(after.find((x) => x.eventType === 'activation.released')).toMatchObject({ activationsUsed: 0, device: null });
  });

  it('licenseLive counts seats in use on a floating license', async () => {
    const t = await s.tenant();
    const productId = await product(t.token, 'float');
    const ed = ok(await s.gql(`mutation($input: CreateEditionInput!) { createEdition(input: $input) { __typename ... on Edition { id } ... on Error { message } } }`, {
      input: { productId, name: 'Float', code: 'float', licenseType: 'FLOATING', provisioning: 'FLOATING', seats: 2 },
    }, { token: t.token })).createEdition;
    expect(ed.__typename).toBe('Edition');
    const lic = ok(await s.gql(`mutation($input: CreateLicenseInput!) { createLicense(input: $input) { ... on CreateLicensePayload { license { id key } } } }`, {
      input: { editionId: ed.id },
    }, { token: t.token })).createLicense.license as { id: string; key: string };
    const sub = subscribe<any>(connect(t.token).client, `subscription($id: ID!) { licenseLive(licenseId: $id) { seats seatsInUse eventType } }`, { id: lic.id }, (d) => d.licenseLive);
    await sub.until((items) => items.length >= 1);
    expect(sub.items[0]).toEqual({ seats: 2, seatsInUse: 0, eventType: null });
    const r = ok(await s.gql(`mutation($input: CheckoutSeatInput!) { checkoutSeat(input: $input) { __typename ... on LicensingError { code message } } }`, {
      input: { key: lic.key, fingerprint: 'seat-1' },
    }));
    expect(r.checkoutSeat.__typename).toBe('SeatLease');
    const items = await sub.until((xs) => xs.some((x) => x.eventType?.startsWith('lease.')));
    expect(items.find((x) => x.eventType?.startsWith('lease.'))).toMatchObject({ seats: 2, seatsInUse: 1 });
  });

  it('licenseLive of another tenant\'s license is not found', async () => {
    const a = await s.tenant();
    const b = await s.tenant();
    const productId = await product(a.token, 'p');
    const ed = ok(await s.gql(`mutation($input: CreateEditionInput!) { createEdition(input: $input) { ... on Edition { id } } }`, {
      input: { productId, name: 'E', code: 'e', licenseType: 'PERPETUAL' },
    }, { token: a.token })).createEdition;
    const lic = ok(await s.gql(`mutation($input: CreateLicenseInput!) { createLicense(input: $input) { ... on CreateLicensePayload { license { id } } } }`, { input: { editionId: ed.id } }, { token: a.token })).createLicense.license;
    const sub = subscribe(connect(b.token).client, `subscription($id: ID!) { licenseLive(licenseId: $id) { activationsUsed } }`, { id: lic.id });
    await expect(sub.until(() => false, 3000)).rejects.toThrow(/not found/);
  });
});

describe('activity subscription over SSE', () => {
  it('streams the tenant\'s events as server-sent events', async () => {
    const t = await s.tenant();
    const controller = new AbortController();
    const res = await s.fetch('/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization: `Bearer ${t.token}` },
      body: JSON.stringify({ query: ACTIVITY, variables: { after: await cursorOf(t.id) } }),
      signal: controller.signal,
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/event-stream/);
    const reader = res.body!.getReader();
    await product(t.token, 'sse');
    let text = '';
    const deadline = Date.now() + 10_000;
    while (!text.includes('product.created') && Date.now() < deadline) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    controller.abort();
    const data = text.split('\n').find((l) => l.startsWith('data:') && l.includes('product.created'))!;
    expect(JSON.parse(data.slice(5)).data.activity).toMatchObject({ type: 'product.created', payload: { code: 'sse' } });
  });

  it('requires credentials', async () => {
    const res = await s.fetch('/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ query: ACTIVITY }),
    });
    const text = await res.text();
    expect(text).toMatch(/UNAUTHENTICATED/);
  });
});

describe('request correlation', () => {
  it('returns the x-request-id it was given and stores it on the events', async () => {
    const t = await s.tenant();
    const given = `req-${Date.now()}`;
    const r = await s.gql(CREATE_PRODUCT, { input: { name: 'c', code: 'corr' } }, { token: t.token, headers: { 'x-request-id': given } });
    expect(r.response.headers.get('x-request-id')).toBe(given);
    const e = await s.db.prisma.auditEvent.findFirstOrThrow({ where: { tenantId: t.id, type: 'product.created' } });
    expect(e.requestId).toBe(given);
  });

  it('generates one when absent or malformed', async () => {
    const t = await s.tenant();
    const r = await s.gql(CREATE_PRODUCT, { input: { name: 'c', code: 'corr2' } }, { token: t.token, headers: { 'x-request-id': 'bad id with spaces' } });
    const id = r.response.headers.get('x-request-id');
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    const e = await s.db.prisma.auditEvent.findFirstOrThrow({ where: { tenantId: t.id, type: 'product.created' } });
    expect(e.requestId).toBe(id);
  });
});

function rawId(globalId: string): string {
  const decoded = Buffer.from(globalId, 'base64').toString();
  return decoded.includes(':') ? decoded.split(':')[1]! : globalId;
}
