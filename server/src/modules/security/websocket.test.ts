import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ok, startTestServer, type TestServer } from '../../../test/harness.ts';
import { listen, sleep, subscribe, wsClient, type WsClient } from '../../../test/ws.ts';
import { sealerOf } from '../audit/chain.ts';

const CONSOLE_ORIGIN = 'https://console.example.com';
const SIGN_IN = `mutation($input: SignInInput!) { signIn(input: $input) { __typename } }`;
const CREATE_MEMBER = `mutation($input: CreateMemberInput!) { createMember(input: $input) { __typename } }`;
const CREATE_CUSTOMER = `mutation($name: String!) { createCustomer(input: { name: $name }) { __typename } }`;
const ACTIVITY = `subscription($after: ID) { activity(after: $after) { id type subjectType actor { type id } } }`;

interface Ev {
  id: string;
  type: string;
  subjectType: string;
  actor: { type: string; id: string | null };
}

let s: TestServer;
let url: string;
let ownOrigin: string;
let tenant: { id: string; slug: string; token: string };
const clients: WsClient[] = [];

beforeAll(async () => {
  s = await startTestServer({ env: { TESSERA_CORS_ORIGINS: CONSOLE_ORIGIN } });
  url = await listen(s.app);
  ownOrigin = new URL(url).origin.replace(/^ws/, 'http');
  tenant = await s.tenant();
  ok(await s.gql(CREATE_MEMBER, { input: { email: 'ada@example.com', password: 'correct horse battery', role: 'ADMIN' } }, { token: tenant.token }));
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.dispose()));
  await s.close();
});

async function signIn(): Promise<string> {
  const r = await s.gql(SIGN_IN, { input: { tenant: tenant.slug, email: 'ada@example.com', password: 'correct horse battery' } });
  expect(ok(r).signIn.__typename).toBe('SignInSuccess');
  return r.response.headers.get('set-cookie')!.split(';')[0]!;
}

function connect(token: string | null, headers?: Record<string, string>) {
  const c = wsClient(url, token, headers);
  clients.push(c);
  return c;
}

/** The newest sealed event: a resume cursor, so a test does not depend on when the server subscribed. */
async function cursor(): Promise<string> {
  await sealerOf(s.app.deps).seal(tenant.id);
  const e = await s.db.prisma.auditEvent.findFirstOrThrow({ where: { tenantId: tenant.id, seq: { not: null } }, orderBy: { seq: 'desc' } });
  return e.id.toString();
}

/** The close code, or 'open' when the server kept the socket (so a regression fails fast). */
const closeCode = (c: WsClient) => Promise.race([c.closed, sleep(5000).then(() => 'open')]);
const errorCodes = (errors: unknown[]) => (errors.flat() as { extensions?: { code?: string } }[]).map((e) => e.extensions?.code);

describe('graphql-ws with the console session cookie', () => {
  it('subscribes from the server\'s own origin and receives the session user\'s events', async () => {
    const cookie = await signIn();
    const sub = subscribe<Ev>(connect(null, { cookie, origin: ownOrigin }).client, ACTIVITY, { after: await cursor() }, (d) => d.activity);
    ok(await s.gql(CREATE_CUSTOMER, { name: 'Live Ltd' }, { headers: { cookie } }));
    const [event] = await sub.until((items) => items.length >= 1);
    expect(event!.type).toBe('customer.created');
    expect(event!.actor.type).toBe('user');
  });

  it('accepts a configured TESSERA_CORS_ORIGINS origin', async () => {
    const cookie = await signIn();
    const sub = subscribe<Ev>(connect(null, { cookie, origin: CONSOLE_ORIGIN }).client, ACTIVITY, { after: await cursor() }, (d) => d.activity);
    ok(await s.gql(CREATE_CUSTOMER, { name: 'Cors Ltd' }, { token: tenant.token }));
    expect((await sub.until((items) => items.length >= 1))[0]!.type).toBe('customer.created');
  });

  it('refuses a cookie upgrade from a foreign origin, or with no Origin (4403)', async () => {
    const cookie = await signIn();
    for (const headers of [{ cookie, origin: 'https://evil.example.net' }, { cookie, origin: 'null' }, { cookie }] as Record<string, string>[]) {
      const c = connect(null, headers);
      const sub = subscribe(c.client, ACTIVITY);
      expect(await closeCode(c), JSON.stringify(headers)).toBe(4403);
      expect(sub.items).toEqual([]);
    }
  });

  it('refuses no credentials, an unknown session and an expired one (4403)', async () => {
    const none = connect(null, { origin: ownOrigin });
    subscribe(none.client, ACTIVITY);
    expect(await closeCode(none)).toBe(4403);

    const unknown = connect(null, { cookie: 'tessera_session=tss_not-a-session', origin: ownOrigin });
    subscribe(unknown.client, ACTIVITY);
    expect(await closeCode(unknown)).toBe(4403);

    const cookie = await signIn();
    const { count } = await s.db.prisma.session.updateMany({
      where: { user: { email: 'ada@example.com', tenantId: tenant.id } },
      data: { expiresAt: new Date(Date.now() - 1000) },
    });
    expect(count).toBeGreaterThan(0);
    const expired = connect(null, { cookie, origin: ownOrigin });
    subscribe(expired.client, ACTIVITY);
    expect(await closeCode(expired)).toBe(4403);
  });

  it('sign-out closes the socket (4403), and it cannot reconnect', async () => {
    const cookie = await signIn();
    const socket = connect(null, { cookie, origin: ownOrigin });
    const before = subscribe<Ev>(socket.client, ACTIVITY, { after: await cursor() }, (d) => d.activity);
    ok(await s.gql(CREATE_CUSTOMER, { name: 'Before Ltd' }, { token: tenant.token }));
    await before.until((items) => items.length >= 1);

    expect(ok(await s.gql(`mutation { signOut }`, {}, { headers: { cookie } })).signOut).toBe(true);
    expect(await closeCode(socket)).toBe(4403);
    ok(await s.gql(CREATE_CUSTOMER, { name: 'After Ltd' }, { token: tenant.token }));
    await sleep(300);
    expect(before.items.filter((e) => e.type === 'customer.created')).toHaveLength(1);

    const again = connect(null, { cookie, origin: ownOrigin });
    subscribe(again.client, ACTIVITY);
    expect(await closeCode(again)).toBe(4403);
  });

  it('a session gone without an event (before the re-check sees it) starts nothing new', async () => {
    const cookie = await signIn();
    const socket = connect(null, { cookie, origin: ownOrigin });
    const before = subscribe<Ev>(socket.client, ACTIVITY, { after: await cursor() }, (d) => d.activity);
    ok(await s.gql(CREATE_CUSTOMER, { name: 'Quiet Ltd' }, { token: tenant.token }));
    await before.until((items) => items.length >= 1);

    await s.db.prisma.session.deleteMany({ where: { user: { email: 'ada@example.com', tenantId: tenant.id } } });
    const after = subscribe(socket.client, ACTIVITY, { after: await cursor() });
    // Refused when it starts (however long that takes on a busy machine), with nothing sent before.
    for (const deadline = Date.now() + 10_000; !after.errors.length && Date.now() < deadline; ) await sleep(20);
    expect(after.items).toEqual([]);
    expect(errorCodes(after.errors)).toEqual(['UNAUTHENTICATED']);
  });

  it('leaves bearer tokens as they were: any Origin, and a bad token never falls back to the cookie', async () => {
    const cookie = await signIn();
    const sub = subscribe<Ev>(connect(tenant.token, { origin: 'https://evil.example.net' }).client, ACTIVITY, { after: await cursor() }, (d) => d.activity);
    ok(await s.gql(CREATE_CUSTOMER, { name: 'Bearer Ltd' }, { token: tenant.token }));
    const [event] = await sub.until((items) => items.length >= 1);
    expect(event!.actor.type).toBe('api_token');

    const bad = connect('tsr_not-a-real-token', { cookie, origin: ownOrigin });
    subscribe(bad.client, ACTIVITY);
    expect(await closeCode(bad)).toBe(4403);
  });
});

describe('graphql-ws: one bad operation fails alone', () => {
  const aliases = `query { ${Array.from({ length: 40 }, (_, i) => `a${i}: viewer { role }`).join(' ')} }`;
  const tokens = `query { ${'__typename '.repeat(3000)} }`;

  it('a syntax error, a document over the alias or token limit, or an invalid field gets an error for its id; the socket and its feed go on', async () => {
    const socket = connect(tenant.token);
    const feed = subscribe<Ev>(socket.client, ACTIVITY, { after: await cursor() }, (d) => d.activity);
    ok(await s.gql(CREATE_CUSTOMER, { name: 'Feed Ltd' }, { token: tenant.token }));
    await feed.until((items) => items.length >= 1);

    const cases = [
      ['subscription { activity { type }', 'GRAPHQL_PARSE_FAILED', /Syntax Error/],
      [aliases, undefined, /Aliases limit of 15 exceeded/],
      [tokens, 'GRAPHQL_PARSE_FAILED', /Token limit of 2000 exceeded/],
      ['subscription { activity { nope } }', 'GRAPHQL_VALIDATION_FAILED', /Cannot query field "nope"/],
    ] as const;
    for (const [query, code, message] of cases) {
      const bad = subscribe(socket.client, query);
      await sleep(200);
      expect(bad.items).toEqual([]);
      const errors = bad.errors.flat() as { message: string; extensions?: { code?: string } }[];
      expect(errors, query.slice(0, 40)).toHaveLength(1);
      expect(errors[0]!.message).toMatch(message);
      expect(errors[0]!.extensions?.code).toBe(code);
    }

    expect(await Promise.race([socket.closed, sleep(300).then(() => 'open')])).toBe('open');
    expect(feed.done).toBe(false);
    expect(feed.errors).toEqual([]);
    ok(await s.gql(CREATE_CUSTOMER, { name: 'Still Ltd' }, { token: tenant.token }));
    const items = await feed.until((xs) => xs.length >= 2);
    expect(items.map((e) => e.type)).toEqual(['customer.created', 'customer.created']);
  });
});

describe('graphql-ws: where sockets are served', () => {
  it('upgrades /graphql only; another path is refused with 400', async () => {
    const { default: WebSocket } = await import('ws');
    const statusOf = (path: string) =>
      new Promise<number | 'open'>((resolve, reject) => {
        const ws = new WebSocket(url.replace('/graphql', path), 'graphql-transport-ws');
        ws.on('open', () => {
          ws.close();
          resolve('open');
        });
        ws.on('unexpected-response', (_req, res) => {
          resolve(res.statusCode ?? 0);
          ws.terminate();
        });
        ws.on('error', (err) => (/Unexpected server response/.test(err.message) ? undefined : reject(err)));
      });
    expect(await statusOf('/graphql')).toBe('open');
    expect(await statusOf('/elsewhere')).toBe(400);
    expect(await statusOf('/')).toBe(400);
  });
});
