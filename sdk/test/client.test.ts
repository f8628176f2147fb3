import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, type JSONWebKeySet, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ok, startTestServer, type TestServer } from '../../server/test/harness.ts';
import { createClient, type TesseraClient } from '../src/client.ts';
import { TesseraError } from '../src/errors.ts';
import { memoryStorage, type Storage } from '../src/storage.ts';

// The SDK against a real Tessera server (in-process, listening on a real port) and against
// misbehaving servers: unreachable, garbage, silent, or signing with a key the app does not trust.

let s: TestServer;
let base: string;
let slug: string;
let token: string;
let jwks: JSONWebKeySet;
let editionId: string;
let cadProductId: string;

async function listen(server: Server): Promise<string> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function newLicense(extra: Record<string, unknown> = {}): Promise<{ id: string; key: string }> {
  const r = ok(
    await s.gql(
      `mutation($input: CreateLicenseInput!) { createLicense(input: $input) { __typename ... on CreateLicensePayload { license { id key } } ... on Error { message } } }`,
      { input: { editionId, ...extra } },
      { token },
    ),
  );
  expect(r.createLicense.__typename).toBe('CreateLicensePayload');
  return r.createLicense.license;
}

function client(storage: Storage = memoryStorage(), options: Partial<Parameters<typeof createClient>[0]> = {}): TesseraClient {
  return createClient({
    endpoint: `${base}/graphql`,
    tenant: slug,
    publicKeys: jwks,
    storage,
    device: { fingerprint: 'sdk-device-1', components: [{ kind: 'MACHINE_ID', value: 'm1' }, { kind: 'CPU', value: 'c1' }, { kind: 'DISK', value: 'd1' }] },
    appVersion: '2.1.0',
    ...options,
  });
}

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'OK';
  } catch (err) {
    if (!(err instanceof TesseraError)) throw err;
    return err.code;
  }
}

beforeAll(async () => {
  s = await startTestServer();
  base = await listen(s.app.server);
  ({ slug, token } = await s.tenant());
  const product = ok(await s.gql(`mutation { createProduct(input: { name: "CAD", code: "cad" }) { ... on Product { id } } }`, {}, { token }));
  const productId = product.createProduct.id;
  cadProductId = productId;
  ok(await s.gql(`mutation($p: ID!) { createFeature(input: { productId: $p, code: "export", name: "Export" }) { __typename } }`, { p: productId }, { token }));
  ok(await s.gql(`mutation($p: ID!) { createFeature(input: { productId: $p, code: "projects", name: "Projects" }) { __typename } }`, { p: productId }, { token }));
  const edition = ok(
    await s.gql(
      `mutation($input: CreateEditionInput!) { createEdition(input: $input) { __typename ... on Edition { id } ... on Error { message } } }`,
      { input: { productId, name: 'Pro', code: 'pro', licenseType: 'SUBSCRIPTION', validityDays: 30, maxActivations: 2, heartbeatSeconds: 60, features: ['export'] } },
      { token },
    ),
  );
  editionId = edition.createEdition.id;
  jwks = (await (await fetch(`${base}/.well-known/jwks.json?tenant=${slug}`)).json()) as JSONWebKeySet;
  expect(jwks.keys.length).toBeGreaterThan(0);
});
afterAll(() => s.close());

describe('online flows against a real server', () => {
  it('activates with persisted operations only, verifies and stores the token; re-activation is reused', async () => {
    const { key } = await newLicense();
    const storage = memoryStorage();
    const c = client(storage);
    const first = await c.activate(key);
    expect(first.reused).toBe(false);
    expect(first.activation.status).toBe('ACTIVE');
    const state = await storage.load();
    expect(state.token).toBe(first.token);
    expect(state.key).toBe(key);
    const again = await c.activate(key);
    expect(again.reused).toBe(true);
    expect(again.activation.license.activationsUsed).toBe(1);
  });

  it('validates online, reports features it lacks, and fails typed for unknown keys', async () => {
    const { key } = await newLicense();
    const c = client();
    await c.activate(key);
    expect(await c.validate({ feature: 'export' })).toMatchObject({ valid: true, offline: false });
    const missing = await c.validate({ feature: 'render' });
    expect(missing).toMatchObject({ valid: false, code: 'FEATURE_NOT_ENTITLED' });
    expect(await code(client().activate('LIC-0000-000000000000-0000'))).toBe('LICENSE_NOT_FOUND');
  });

  it('picks up a renewal through the heartbeat: a fresh token and the new revision', async () => {
    const lic = await newLicense();
    const storage = memoryStorage();
    const c = client(storage);
    await c.activate(lic.key);
    const before = (await storage.load()).revision!;
    ok(await s.gql(`mutation($id: ID!) { renewLicense(input: { licenseId: $id, extendDays: 365 }) { __typename } }`, { id: lic.id }, { token }));
    const beat = await c.heartbeat();
    expect(beat.updateAvailable).toBe(true);
    expect(beat.token).toBeTruthy();
    const after = await storage.load();
    expect(after.revision).toBeGreaterThan(before);
    expect(after.token).toBe(beat.token);
  });

  it('runs a heartbeat loop that stops cleanly', async () => {
    const { key } = await newLicense();
    const c = client();
    await c.activate(key);
    const errors: TesseraError[] = [];
    const loop = c.startHeartbeat({ onError: (e) => errors.push(e) });
    await new Promise((r) => setTimeout(r, 300));
    await loop.stop();
    expect(errors).toEqual([]);
    const seen = ok(await s.gql(`query($key: String!) { licenseByKey(key: $key) { activations(first: 1) { edges { node { lastHeartbeatAt } } } } }`, { key }, { token }));
    expect(seen.licenseByKey.activations.edges[0].node.lastHeartbeatAt).not.toBeNull();
  });

  it('deactivates and forgets the token', async () => {
    const { key } = await newLicense();
    const storage = memoryStorage();
    const c = client(storage);
    await c.activate(key);
    const r = await c.deactivate();
    expect(r.activation.status).toBe('RELEASED');
    expect((await storage.load()).token).toBeUndefined();
  });
});

describe('numeric entitlements', () => {
  it('validates a quantity online and offline, and reads limits from the verified token', async () => {
    const { key } = await newLicense({ entitlements: [{ feature: 'projects', limit: 5 }] });
    const storage = memoryStorage();
    const c = client(storage);
    const a = await c.activate(key);
    expect(a.activation.license.entitlements).toEqual([{ feature: 'projects', limit: 5 }]);
    expect(await c.validate({ feature: 'projects', quantity: 5 })).toMatchObject({ valid: true, offline: false, license: { entitlements: [{ feature: 'projects', limit: 5 }] } });
    expect(await c.validate({ feature: 'projects', quantity: 6 })).toMatchObject({ valid: false, code: 'FEATURE_NOT_ENTITLED', offline: false });
    expect(await c.limitOf('projects')).toBe(5);
    expect(await c.entitlement('export')).toBeNull();

    const unreachable = client(storage, { endpoint: 'http://127.0.0.1:9/graphql', timeoutMs: 2000 });
    expect(await unreachable.validate({ feature: 'projects', quantity: 5 })).toMatchObject({ valid: true, offline: true, license: { entitlements: [{ feature: 'projects', limit: 5 }] } });
    expect(await unreachable.validate({ feature: 'projects', quantity: 6 })).toMatchObject({ valid: false, offline: true, code: 'FEATURE_NOT_ENTITLED' });
    expect(await unreachable.validate({ feature: 'export', quantity: 99 })).toMatchObject({ valid: true, offline: true });
  });
});

describe('offline fallback and grace', () => {
  it('validates from the stored token while the server is unreachable, until the grace period ends', async () => {
    const { key } = await newLicense();
    const storage = memoryStorage();
    await client(storage).activate(key);
    const unreachable = client(storage, { endpoint: 'http://127.0.0.1:9/graphql', timeoutMs: 2000, gracePeriodSeconds: 3600 });
    expect(await unreachable.validate({ feature: 'export' })).toMatchObject({ valid: true, offline: true });
    expect(await unreachable.validate({ feature: 'render' })).toMatchObject({ valid: false, code: 'FEATURE_NOT_ENTITLED' });

    const state = await storage.load();
    await storage.save({ ...state, lastOnlineAt: new Date(Date.now() - 2 * 3600_000).toISOString() });
    expect(await unreachable.validate()).toMatchObject({ valid: false, offline: true, code: 'GRACE_PERIOD_EXPIRED' });
  });

  it('detects a clock rolled back before the last time seen', async () => {
    const { key } = await newLicense();
    const storage = memoryStorage();
    await client(storage).activate(key);
    const state = await storage.load();
    await storage.save({ ...state, lastSeenTime: new Date(Date.now() + 3 * 86400_000).toISOString() });
    const unreachable = client(storage, { endpoint: 'http://127.0.0.1:9/graphql', timeoutMs: 2000 });
    expect(await unreachable.validate()).toMatchObject({ valid: false, code: 'CLOCK_ROLLBACK' });
  });
});

describe('server refusals are remembered offline', () => {
  const admin = (mutation: string, licenseId: string) => s.gql(`mutation($id: ID!) { ${mutation}(input: { licenseId: $id }) { __typename } }`, { id: licenseId }, { token });
  const unreachable = (storage: Storage) => client(storage, { endpoint: 'http://127.0.0.1:9/graphql', timeoutMs: 2000 });

  it('a released activation (heartbeat answers ACTIVATION_RELEASED) no longer validates offline', async () => {
    const { key } = await newLicense({ entitlements: [{ feature: 'projects', limit: 5 }] });
    const storage = memoryStorage();
    const c = client(storage);
    const a = await c.activate(key);
    ok(await s.gql(`mutation($id: ID!) { releaseActivation(input: { activationId: $id }) { __typename } }`, { id: a.activation.id }, { token }));
    expect(await code(c.heartbeat())).toBe('ACTIVATION_RELEASED');
    expect(await unreachable(storage).validate({ feature: 'export' })).toMatchObject({ valid: false, offline: true, code: 'ACTIVATION_RELEASED' });
    expect(await code(c.limitOf('projects'))).toBe('ACTIVATION_RELEASED');
    // Activating again is the way back.
    await c.activate(key);
    expect(await unreachable(storage).validate({ feature: 'export' })).toMatchObject({ valid: true, offline: true });
  });

  it('a revoked license (validate answers valid:false) fails offline and does not extend the grace period', async () => {
    const lic = await newLicense();
    const storage = memoryStorage();
    const c = client(storage);
    await c.activate(lic.key);
    ok(await admin('revokeLicense', lic.id));
    const lastOnlineAt = new Date(Date.now() - 6.9 * 86400_000).toISOString();
    await storage.save({ ...(await storage.load()), lastOnlineAt });
    expect(await c.validate()).toMatchObject({ valid: false, offline: false, code: 'LICENSE_REVOKED' });
    expect((await storage.load()).lastOnlineAt).toBe(lastOnlineAt);
    expect(await unreachable(storage).validate()).toMatchObject({ valid: false, offline: true, code: 'LICENSE_REVOKED' });
  });

  it('a suspended license fails offline until the server answers again after reinstatement', async () => {
    const lic = await newLicense();
    const storage = memoryStorage();
    const c = client(storage);
    await c.activate(lic.key);
    ok(await admin('suspendLicense', lic.id));
    expect(await c.validate()).toMatchObject({ valid: false, code: 'LICENSE_SUSPENDED' });
    expect(await unreachable(storage).validate()).toMatchObject({ valid: false, offline: true, code: 'LICENSE_SUSPENDED' });
    expect(await code(c.heartbeat())).toBe('LICENSE_SUSPENDED');
    expect((await storage.load()).token).toBeTruthy(); // reversible: the activation is kept
    ok(await admin('reinstateLicense', lic.id));
    expect(await c.validate()).toMatchObject({ valid: true, offline: false });
    expect(await unreachable(storage).validate()).toMatchObject({ valid: true, offline: true });
  });

  it('the heartbeat loop keeps beating through a suspension and is back to normal after reinstatement', async () => {
    const lic = await newLicense();
    const storage = memoryStorage();
    await client(storage).activate(lic.key);
    ok(await admin('suspendLicense', lic.id));
    const answers: string[] = [];
    const watching: typeof fetch = async (url, init) => {
      const res = await fetch(url, init);
      const text = await res.text();
      const beat = JSON.parse(text)?.data?.heartbeat;
      if (beat) answers.push(beat.code ?? beat.__typename);
      return new Response(text, { status: res.status, headers: res.headers });
    };
    const errors: string[] = [];
    const loop = client(storage, { fetch: watching }).startHeartbeat({ onError: (e) => errors.push(e.code), fallbackSeconds: 2 });
    await new Promise((r) => setTimeout(r, 300));
    ok(await admin('reinstateLicense', lic.id));
    await new Promise((r) => setTimeout(r, 2700));
    await loop.stop();
    expect(errors).toEqual(['LICENSE_SUSPENDED']);
    expect(answers).toEqual(['LICENSE_SUSPENDED', 'HeartbeatSuccess']);
    expect(await unreachable(storage).validate()).toMatchObject({ valid: true, offline: true });
  });

  it('the heartbeat loop stops for good when the activation is released', async () => {
    const { key } = await newLicense();
    const storage = memoryStorage();
    const a = await client(storage).activate(key);
    ok(await s.gql(`mutation($id: ID!) { releaseActivation(input: { activationId: $id }) { __typename } }`, { id: a.activation.id }, { token }));
    let calls = 0;
    const counting: typeof fetch = (url, init) => {
      calls++;
      return fetch(url, init);
    };
    const errors: string[] = [];
    const loop = client(storage, { fetch: counting }).startHeartbeat({ onError: (e) => errors.push(e.code), fallbackSeconds: 1 });
    await new Promise((r) => setTimeout(r, 2500));
    await loop.stop();
    expect(errors).toEqual(['ACTIVATION_RELEASED']);
    expect(calls).toBe(1);
  });

  it('a feature the license lacks is no refusal of the license: offline validation still works', async () => {
    const { key } = await newLicense();
    const storage = memoryStorage();
    const c = client(storage);
    await c.activate(key);
    expect(await c.validate({ feature: 'render' })).toMatchObject({ valid: false, code: 'FEATURE_NOT_ENTITLED' });
    expect(await unreachable(storage).validate({ feature: 'export' })).toMatchObject({ valid: true, offline: true });
  });
});

describe('a machine clock that is wrong', () => {
  const unreachable = (storage: Storage) => client(storage, { endpoint: 'http://127.0.0.1:9/graphql', timeoutMs: 2000 });
  /** The server as seen from a machine whose clock is `skewMs` ahead: every time it sends reads `skewMs` earlier. */
  function fastClock(skewMs: number, counter: { beats: number }, options: { dropDate?: boolean } = {}): typeof fetch {
    return async (url, init) => {
      const res = await fetch(url, init);
      const body = await res.json();
      const headers = new Headers({ 'content-type': 'application/json' });
      const date = res.headers.get('date');
      if (date && !options.dropDate) headers.set('date', new Date(new Date(date).getTime() - skewMs).toUTCString());
      if (body?.data?.heartbeat) {
        counter.beats++;
        if (body.data.heartbeat.nextHeartbeatBy) body.data.heartbeat.nextHeartbeatBy = new Date(new Date(body.data.heartbeat.nextHeartbeatBy).getTime() - skewMs).toISOString();
      }
      return new Response(JSON.stringify(body), { status: res.status, headers });
    };
  }

  it('ten minutes fast: the heartbeat loop waits the server interval instead of beating every second', async () => {
    const { key } = await newLicense();
    for (const dropDate of [false, true]) {
      const counter = { beats: 0 };
      const storage = memoryStorage();
      await client(storage).activate(key);
      const loop = client(storage, { fetch: fastClock(600_000, counter, { dropDate }) }).startHeartbeat();
      await new Promise((r) => setTimeout(r, 2500));
      await loop.stop();
      expect({ dropDate, beats: counter.beats }).toEqual({ dropDate, beats: 1 });
    }
  });

  it('ten minutes fast: a floating seat is renewed at half its lease, not every second', async () => {
    const floating = ok(
      await s.gql(
        `mutation($input: CreateEditionInput!) { createEdition(input: $input) { __typename ... on Edition { id } ... on Error { message } } }`,
        { input: { productId: cadProductId, name: 'Float', code: 'float', licenseType: 'FLOATING', provisioning: 'FLOATING', seats: 2, leaseSeconds: 120 } },
        { token },
      ),
    ).createEdition.id;
    const { key } = await newLicense({ editionId: floating });
    for (const dropDate of [false, true]) {
      let renewals = 0;
      const skew = 600_000;
      const fast: typeof fetch = async (url, init) => {
        const res = await fetch(url, init);
        const body = await res.json();
        const headers = new Headers({ 'content-type': 'application/json' });
        const date = res.headers.get('date');
        if (date && !dropDate) headers.set('date', new Date(new Date(date).getTime() - skew).toUTCString());
        if (body?.data?.heartbeatSeat) renewals++;
        for (const lease of [body?.data?.checkoutSeat, body?.data?.heartbeatSeat]) {
          if (lease?.expiresAt) lease.expiresAt = new Date(new Date(lease.expiresAt).getTime() - skew).toISOString();
        }
        return new Response(JSON.stringify(body), { status: res.status, headers });
      };
      const storage = memoryStorage();
      await storage.save({ key });
      const seat = await client(storage, { fetch: fast }).checkoutSeat();
      if (!('release' in seat)) throw new Error('no seat');
      await new Promise((r) => setTimeout(r, 2500));
      await seat.release();
      expect({ dropDate, renewals }).toEqual({ dropDate, renewals: 0 });
    }
  });

  it('ten minutes slow: activation online works and the token validates offline right away', async () => {
    const { key } = await newLicense();
    // The server answers in real time; from the moment its answer is in, this machine's clock reads 10 minutes earlier.
    const slowClock: typeof fetch = async (url, init) => {
      const res = await fetch(url, init);
      const text = await res.text();
      vi.useFakeTimers({ toFake: ['Date'], now: Date.now() - 600_000 });
      return new Response(text, { status: res.status, headers: res.headers });
    };
    const storage = memoryStorage();
    try {
      const a = await client(storage, { fetch: slowClock }).activate(key);
      expect((await storage.load()).token).toBe(a.token);
      expect(await unreachable(storage).validate({ feature: 'export' })).toMatchObject({ valid: true, offline: true });
    } finally {
      vi.useRealTimers();
    }
  });

  it('once 3 days fast: a successful server answer ends the CLOCK_ROLLBACK that time left behind', async () => {
    const { key } = await newLicense({ entitlements: [{ feature: 'projects', limit: 5 }] });
    const storage = memoryStorage();
    const c = client(storage);
    await c.activate(key);
    await storage.save({ ...(await storage.load()), lastSeenTime: new Date(Date.now() + 3 * 86400_000).toISOString() });
    expect(await unreachable(storage).validate()).toMatchObject({ valid: false, code: 'CLOCK_ROLLBACK' });
    expect(await c.validate()).toMatchObject({ valid: true, offline: false });
    expect(await c.limitOf('projects')).toBe(5);
    expect(await unreachable(storage).validate()).toMatchObject({ valid: true, offline: true });
  });
});

describe('metered usage', () => {
  let meteredEdition: string;
  beforeAll(async () => {
    const productId = ok(await s.gql(`mutation { createProduct(input: { name: "Render", code: "render" }) { ... on Product { id } } }`, {}, { token })).createProduct.id;
    ok(await s.gql(`mutation($p: ID!) { createMeter(input: { productId: $p, code: "api", name: "API calls" }) { __typename } }`, { p: productId }, { token }));
    meteredEdition = ok(
      await s.gql(`mutation($input: CreateEditionInput!) { createEdition(input: $input) { ... on Edition { id } } }`, {
        input: { productId, name: 'Metered', code: 'metered', licenseType: 'PERPETUAL', maxActivations: 2, meters: [{ meter: 'api', quota: 1000, period: 'NONE' }] },
      }, { token }),
    ).createEdition.id;
  });
  const used = async (licenseId: string) => {
    const rows = await s.db.prisma.usageBalance.findMany({ where: { licenseId: Buffer.from(licenseId, 'base64').toString().split(':')[1]! } });
    return rows.reduce((sum, r) => sum + Number(r.used), 0);
  };

  it('counts two concurrent recordUsage calls of the same meter and quantity twice', async () => {
    const lic = ok(await s.gql(`mutation($input: CreateLicenseInput!) { createLicense(input: $input) { ... on CreateLicensePayload { license { id key } } } }`, { input: { editionId: meteredEdition } }, { token })).createLicense.license;
    const storage = memoryStorage();
    const c = client(storage);
    await c.activate(lic.key);
    const first = c.recordUsage('api', 1);
    await new Promise((r) => setImmediate(r)); // the first call has stored its pending key
    const tickets = await Promise.all([first, c.recordUsage('api', 1), c.recordUsage('api', 1)]);
    expect(new Set(tickets.map((t) => t.id)).size).toBe(3);
    expect(await used(lic.id)).toBe(3);
    expect((await storage.load()).pendingUsage).toEqual({});
  });

  it('retries an unanswered call with its key, even from the next run, so it counts once', async () => {
    const lic = ok(await s.gql(`mutation($input: CreateLicenseInput!) { createLicense(input: $input) { ... on CreateLicensePayload { license { id key } } } }`, { input: { editionId: meteredEdition } }, { token })).createLicense.license;
    const storage = memoryStorage();
    await client(storage).activate(lic.key);
    // The server records the use, and the answer is lost on the way back.
    const lossy: typeof fetch = async (url, init) => {
      await fetch(url, init);
      throw new TypeError('connection reset');
    };
    expect(await code(client(storage, { fetch: lossy }).recordUsage('api', 1, { retries: 0 }))).toBe('NETWORK_ERROR');
    expect(await used(lic.id)).toBe(1);
    expect(Object.keys((await storage.load()).pendingUsage ?? {})).toHaveLength(1);
    // The next run asks again for the same use: the kept key makes it the same call.
    await client(storage).recordUsage('api', 1);
    expect(await used(lic.id)).toBe(1);
    expect((await storage.load()).pendingUsage).toEqual({});
    await client(storage).recordUsage('api', 1);
    expect(await used(lic.id)).toBe(2);
  });

  it("waits the server's Retry-After before retrying a use, and fails at once when it is longer than the caller waits", async () => {
    const lic = ok(await s.gql(`mutation($input: CreateLicenseInput!) { createLicense(input: $input) { ... on CreateLicensePayload { license { id key } } } }`, { input: { editionId: meteredEdition } }, { token })).createLicense.license;
    const storage = memoryStorage();
    await client(storage).activate(lic.key);
    // The server is down for maintenance for the first `refusals` usage calls, and says for how long.
    const sent: { at: number; key: string }[] = [];
    const busy = (refusals: number, seconds: number): typeof fetch => async (url, init) => {
      const body = JSON.parse(String(init?.body ?? '{}'));
      if (body.operationName !== 'RecordUsage') return fetch(url, init);
      sent.push({ at: Date.now(), key: body.variables.input.idempotencyKey });
      if (sent.length <= refusals) return new Response('<html>maintenance</html>', { status: 503, headers: { 'retry-after': String(seconds), 'content-type': 'text/html' } });
      return fetch(url, init);
    };
    await client(storage, { fetch: busy(1, 2) }).recordUsage('api', 1);
    expect(sent).toHaveLength(2);
    // Not the 0.5 s of the first backoff: the 2 s the server asked for.
    expect(sent[1]!.at - sent[0]!.at).toBeGreaterThanOrEqual(2000);
    expect(sent[1]!.key).toBe(sent[0]!.key);
    expect(await used(lic.id)).toBe(1);

    // Back in two minutes: retrying in seconds would be refused again; the error says when to come back.
    sent.length = 0;
    const err = await client(storage, { fetch: busy(1, 120) }).recordUsage('api', 1).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'NETWORK_ERROR', retryAfterSeconds: 120 });
    expect(sent).toHaveLength(1);
    expect(await used(lic.id)).toBe(1);
    // Its key is kept: the next call for the same use sends it, and the use counts once.
    expect(Object.keys((await storage.load()).pendingUsage ?? {})).toEqual([sent[0]!.key]);
    await client(storage, { fetch: busy(0, 0) }).recordUsage('api', 1, { maxWaitSeconds: 300 });
    expect(sent[1]!.key).toBe(sent[0]!.key);
    expect(await used(lic.id)).toBe(2);
    expect((await storage.load()).pendingUsage).toEqual({});
  });
});

describe('a server that rate-limits the key', () => {
  let limited: TestServer;
  let limitedBase: string;
  beforeAll(async () => {
    limited = await startTestServer({ env: { TESSERA_RATE_LIMIT_KEY_PER_MINUTE: '3' } });
    limitedBase = await listen(limited.app.server);
  });
  afterAll(() => limited.close());

  it('the heartbeat loop waits the Retry-After the server gives instead of beating again in seconds', async () => {
    const t = await limited.tenant();
    const productId = ok(await limited.gql(`mutation { createProduct(input: { name: "CAD", code: "cad" }) { ... on Product { id } } }`, {}, { token: t.token })).createProduct.id;
    const edition = ok(
      await limited.gql(
        `mutation($input: CreateEditionInput!) { createEdition(input: $input) { __typename ... on Edition { id } } }`,
        { input: { productId, name: 'Pro', code: 'pro', licenseType: 'SUBSCRIPTION', validityDays: 30, maxActivations: 2, heartbeatSeconds: 60 } },
        { token: t.token },
      ),
    ).createEdition.id;
    const { key } = ok(
      await limited.gql(`mutation($input: CreateLicenseInput!) { createLicense(input: $input) { ... on CreateLicensePayload { license { key } } } }`, { input: { editionId: edition } }, { token: t.token }),
    ).createLicense.license;
    const keys = (await (await fetch(`${limitedBase}/.well-known/jwks.json?tenant=${t.slug}`)).json()) as JSONWebKeySet;
    const c = client(memoryStorage(), { endpoint: `${limitedBase}/graphql`, tenant: t.slug, publicKeys: keys });
    await c.activate(key);
    await c.heartbeat();
    await c.heartbeat();
    // The key's budget of 3 a minute is spent: the server answers RATE_LIMITED with how long to wait.
    const refused = await c.heartbeat().catch((e: unknown) => e as TesseraError);
    expect(refused).toMatchObject({ code: 'RATE_LIMITED' });
    expect((refused as TesseraError).retryAfterSeconds).toBeGreaterThan(0);

    // The delay the loop asks of setTimeout right after it reports the refusal is its next beat.
    const timers = vi.spyOn(globalThis, 'setTimeout');
    let scheduledAt = -1;
    let reported!: (e: TesseraError) => void;
    const error = new Promise<TesseraError>((resolve) => (reported = resolve));
    const loop = c.startHeartbeat({
      onError: (e) => {
        scheduledAt = timers.mock.calls.length;
        reported(e);
      },
    });
    const e = await error;
    await loop.stop();
    const delay = timers.mock.calls[scheduledAt]?.[1];
    timers.mockRestore();
    expect(e.code).toBe('RATE_LIMITED');
    expect(delay).toBeGreaterThanOrEqual(e.retryAfterSeconds! * 1000);
  });

  it('a floating seat is not renewed again before the Retry-After of a refused renewal', async () => {
    const t = await limited.tenant();
    const q = async (query: string, variables: Record<string, unknown>) => ok(await limited.gql(query, variables, { token: t.token }));
    const productId = (await q(`mutation { createProduct(input: { name: "CAD", code: "cad" }) { ... on Product { id } } }`, {})).createProduct.id;
    const edition = (await q(`mutation($input: CreateEditionInput!) { createEdition(input: $input) { ... on Edition { id } } }`, {
      input: { productId, name: 'Float', code: 'float', licenseType: 'FLOATING', provisioning: 'FLOATING', seats: 2, leaseSeconds: 60 },
    })).createEdition.id;
    const { key } = (await q(`mutation($input: CreateLicenseInput!) { createLicense(input: $input) { ... on CreateLicensePayload { license { key } } } }`, { input: { editionId: edition } })).createLicense.license;
    const keys = (await (await fetch(`${limitedBase}/.well-known/jwks.json?tenant=${t.slug}`)).json()) as JSONWebKeySet;
    // The lease looks 2 s from its end, so the first renewal comes after 1 s; the key's budget (3 a
    // minute) is then spent, and the server refuses it with a Retry-After.
    let renewals = 0;
    let refusedAt = 0;
    const shortLease: typeof fetch = async (url, init) => {
      const res = await fetch(url, init);
      const body = await res.json();
      const lease = body?.data?.checkoutSeat;
      if (lease?.expiresAt) lease.expiresAt = new Date(new Date(res.headers.get('date')!).getTime() + 2000).toISOString();
      if (body?.data?.heartbeatSeat) {
        renewals++;
        if (body.data.heartbeatSeat.code === 'RATE_LIMITED' && !refusedAt) refusedAt = Date.now();
      }
      return new Response(JSON.stringify(body), { status: res.status, headers: res.headers });
    };
    const c = client(memoryStorage(), { endpoint: `${limitedBase}/graphql`, tenant: t.slug, publicKeys: keys, fetch: shortLease });
    await c.activate(key);
    await c.validate();
    const seat = await c.checkoutSeat();
    if (!('release' in seat)) throw new Error('no seat');
    try {
      for (let i = 0; !refusedAt && i < 400; i++) await new Promise((r) => setTimeout(r, 25));
      expect(renewals).toBe(1);
      expect(refusedAt).toBeGreaterThan(0);
      // A renewal on the stale lease's clock would come again within a second or two.
      await new Promise((r) => setTimeout(r, 3000));
      expect(renewals).toBe(1);
    } finally {
      await seat.release().catch(() => {});
    }
  });
});

describe('misbehaving servers', () => {
  let fake: Server;
  let fakeBase: string;
  let mode: 'garbage' | 'silent' | 'forged' | 'unavailable' | 'no-deadline' = 'garbage';
  let forged = '';
  let heartbeats = 0;

  beforeAll(async () => {
    fake = createServer((req, res) => {
      if (mode === 'silent') return; // never answers
      if (mode === 'garbage') return void res.writeHead(200, { 'content-type': 'text/html' }).end('<html>oops</html>');
      if (mode === 'unavailable') return void res.writeHead(503, { 'content-type': 'text/html', 'retry-after': '30' }).end('<html>down for maintenance</html>');
      if (mode === 'no-deadline') {
        // A heartbeat answered as the server would, but for a nextHeartbeatBy that is no time.
        heartbeats++;
        const license = { status: 'ACTIVE', type: 'SUBSCRIPTION', expiresAt: null, revision: 1, maxActivations: 2, activationsUsed: 1, features: [] };
        const activation = { id: 'x', status: 'ACTIVE', fingerprint: 'sdk-device-1', activatedAt: new Date().toISOString(), lastHeartbeatAt: null, license };
        return void res
          .writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify({ data: { heartbeat: { __typename: 'HeartbeatSuccess', updateAvailable: false, token: null, nextHeartbeatBy: 'soon', activation } } }));
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(
        JSON.stringify({
          data: {
            activate: {
              __typename: 'ActivateSuccess',
              token: forged,
              reused: false,
              goodwill: false,
              activation: { id: 'x', status: 'ACTIVE', fingerprint: 'sdk-device-1', activatedAt: new Date().toISOString(), lastHeartbeatAt: null, license: { status: 'ACTIVE', type: 'SUBSCRIPTION', expiresAt: null, revision: 99, maxActivations: 2, activationsUsed: 1, features: ['everything'] } },
            },
          },
        }),
      );
    });
    fakeBase = await listen(fake);
    const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
    forged = await new SignJWT({ fingerprint: 'sdk-device-1', features: ['everything'], revision: 99 })
      .setProtectedHeader({ alg: 'EdDSA', typ: 'tessera-activation+jwt', kid: jwks.keys[0]!.kid! })
      .setIssuer(slug)
      .setIssuedAt()
      .sign(privateKey);
    void exportJWK;
  });
  afterAll(() => new Promise<void>((r) => fake.close(() => r())));

  it('reports garbage as BAD_RESPONSE and a silent server as NETWORK_ERROR (timeout)', async () => {
    const c = client(memoryStorage(), { endpoint: `${fakeBase}/graphql`, timeoutMs: 300 });
    mode = 'garbage';
    expect(await code(c.activate('LIC-0000-000000000000-0000'))).toBe('BAD_RESPONSE');
    mode = 'silent';
    expect(await code(c.activate('LIC-0000-000000000000-0000'))).toBe('NETWORK_ERROR');
  });

  it('reports a 503 as NETWORK_ERROR with the Retry-After it gives', async () => {
    mode = 'unavailable';
    const err = await client(memoryStorage(), { endpoint: `${fakeBase}/graphql` }).activate('LIC-0000-000000000000-0000').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'NETWORK_ERROR', retryAfterSeconds: 30 });
  });

  it('a heartbeat deadline that is no time makes the loop wait its fallback interval, not beat at once again', async () => {
    const { key } = await newLicense();
    const storage = memoryStorage();
    await client(storage).activate(key);
    mode = 'no-deadline';
    heartbeats = 0;
    const loop = client(storage, { endpoint: `${fakeBase}/graphql` }).startHeartbeat({ fallbackSeconds: 60 });
    try {
      for (let i = 0; heartbeats === 0 && i < 200; i++) await new Promise((r) => setTimeout(r, 25));
      expect(heartbeats).toBe(1);
      // A loop that took the deadline for "now" would have beaten again many times by now.
      await new Promise((r) => setTimeout(r, 1500));
      expect(heartbeats).toBe(1);
    } finally {
      await loop.stop();
    }
  });

  it('refuses a token signed by another key and keeps the last valid one', async () => {
    const { key } = await newLicense();
    const storage = memoryStorage();
    const good = await client(storage).activate(key);
    mode = 'forged';
    const evil = client(storage, { endpoint: `${fakeBase}/graphql` });
    expect(await code(evil.activate(key))).toBe('INVALID_SIGNATURE');
    const state = await storage.load();
    expect(state.token).toBe(good.token);
    expect(state.revision).not.toBe(99);
  });
});
