import { randomBytes } from 'node:crypto';
import { type Database, openDatabase } from '@tessera/db/database';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type App, buildApp } from '../../app.ts';
import { loadConfig } from '../../config.ts';
import { freshPostgres, ok, startTestServer, testDatabaseUrl, testEnv, type TestServer } from '../../../test/harness.ts';
import { listen, sleep, subscribe, wsClient, type WsClient } from '../../../test/ws.ts';
import { hashSecret } from '../tenants/secrets.ts';
import { createTenant, SESSION_MAX_AGE_MS } from '../tenants/service.ts';
import { sealerOf } from '../audit/chain.ts';
import { socketGuardOf } from './sockets.ts';

/*
 * An open graphql-ws socket ends (4403) when its credential does: a revoked API token, a signed-out
 * session (on every instance, through the bus), an expired session (the periodic re-check).
 */

const SIGN_IN = `mutation($input: SignInInput!) { signIn(input: $input) { __typename } }`;
const CREATE_MEMBER = `mutation($input: CreateMemberInput!) { createMember(input: $input) { __typename } }`;
const CREATE_TOKEN = `mutation($input: CreateApiTokenInput!) { createApiToken(input: $input) { ... on CreateApiTokenPayload { token apiToken { id } } } }`;
const REVOKE_TOKEN = `mutation($id: ID!) { revokeApiToken(input: { id: $id }) { __typename } }`;
const CREATE_CUSTOMER = `mutation($name: String!) { createCustomer(input: { name: $name }) { __typename } }`;
const ACTIVITY = `subscription($after: ID) { activity(after: $after) { type payload } }`;

interface Ev {
  type: string;
  payload: { name?: string };
}

/** The close code, or 'open' if the socket is still open after `ms`. */
const closeCode = (c: WsClient, ms = 3000) => Promise.race([c.closed, sleep(ms).then(() => 'open' as const)]);
const names = (items: Ev[]) => items.filter((e) => e.type === 'customer.created').map((e) => e.payload.name);

describe('open sockets on one instance', () => {
  const PASSWORD = 'correct horse battery';
  let s: TestServer;
  let url: string;
  let origin: string;
  let tenant: { id: string; slug: string; token: string };
  const clients: WsClient[] = [];

  beforeAll(async () => {
    s = await startTestServer();
    url = await listen(s.app);
    origin = new URL(url).origin.replace(/^ws/, 'http');
    tenant = await s.tenant();
    ok(await s.gql(CREATE_MEMBER, { input: { email: 'ada@example.com', password: PASSWORD, role: 'ADMIN' } }, { token: tenant.token }));
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.dispose()));
    await s.close();
  });

  const connect = (token: string | null, headers?: Record<string, string>) => {
    const c = wsClient(url, token, headers);
    clients.push(c);
    return c;
  };
  // SUPPORT: the feeds below resume with `after`, which replays the audit log.
  const newToken = async (name: string) =>
    ok(await s.gql(CREATE_TOKEN, { input: { name, role: 'SUPPORT' } }, { token: tenant.token })).createApiToken as { token: string; apiToken: { id: string } };
  const signIn = async () => {
    const r = await s.gql(SIGN_IN, { input: { tenant: tenant.slug, email: 'ada@example.com', password: PASSWORD } });
    expect(ok(r).signIn.__typename).toBe('SignInSuccess');
    return r.response.headers.get('set-cookie')!.split(';')[0]!;
  };
  /** Opens an activity feed and waits until a new event reaches it, so the socket is known to stream. */
  const streaming = async (c: WsClient, label: string) => {
    // From the newest sealed event, so the feed gets `label` however late the server subscribes.
    await sealerOf(s.app.deps).seal(tenant.id);
    const head = await s.db.prisma.auditEvent.findFirstOrThrow({ where: { tenantId: tenant.id, seq: { not: null } }, orderBy: { seq: 'desc' } });
    const sub = subscribe<Ev>(c.client, ACTIVITY, { after: head.id.toString() }, (d) => d.activity);
    ok(await s.gql(CREATE_CUSTOMER, { name: label }, { token: tenant.token }));
    await sub.until((items) => names(items).includes(label));
    return sub;
  };

  it('revokeApiToken closes the token\'s socket (4403); another token\'s socket keeps streaming', async () => {
    const [revoked, kept] = [await newToken('revoked'), await newToken('kept')];
    const gone = connect(revoked.token);
    const stays = connect(kept.token);
    const goneSub = await streaming(gone, 'Before A');
    const staysSub = await streaming(stays, 'Before B');

    expect(ok(await s.gql(REVOKE_TOKEN, { id: revoked.apiToken.id }, { token: tenant.token })).revokeApiToken.__typename).toBe('ApiToken');
    expect(await closeCode(gone)).toBe(4403);
    const seen = goneSub.items.length;

    ok(await s.gql(CREATE_CUSTOMER, { name: 'After' }, { token: tenant.token }));
    await staysSub.until((items) => names(items).includes('After'));
    await sleep(200);
    expect(goneSub.items).toHaveLength(seen);
    expect(names(goneSub.items)).not.toContain('After');
    expect(await closeCode(stays, 300)).toBe('open');
  });

  it('signOut closes the session\'s socket (4403); the same member\'s other session stays', async () => {
    const [cookie, other] = [await signIn(), await signIn()];
    const gone = connect(null, { cookie, origin });
    const stays = connect(null, { cookie: other, origin });
    await streaming(gone, 'Session A');
    const staysSub = await streaming(stays, 'Session B');

    expect(ok(await s.gql(`mutation { signOut }`, {}, { headers: { cookie } })).signOut).toBe(true);
    expect(await closeCode(gone)).toBe(4403);

    ok(await s.gql(CREATE_CUSTOMER, { name: 'After sign-out' }, { token: tenant.token }));
    await staysSub.until((items) => names(items).includes('After sign-out'));
    expect(await closeCode(stays, 300)).toBe('open');
  });

  it('member changes close the member\'s sockets (4403): role, removal, admin reset; changePassword keeps its own session\'s', async () => {
    const member = async (email: string) => {
      const r = ok(await s.gql(`mutation($input: CreateMemberInput!) { createMember(input: $input) { ... on Member { id } } }`, { input: { email, password: PASSWORD, role: 'SUPPORT' } }, { token: tenant.token }));
      const session = async () => {
        const res = await s.gql(SIGN_IN, { input: { tenant: tenant.slug, email, password: PASSWORD } });
        expect(ok(res).signIn.__typename).toBe('SignInSuccess');
        return res.response.headers.get('set-cookie')!.split(';')[0]!;
      };
      return { id: r.createMember.id as string, session };
    };
    const bystander = connect(null, { cookie: await signIn(), origin });
    await streaming(bystander, 'Bystander');
    const changes: [string, (id: string) => [string, Record<string, unknown>]][] = [
      ['role', (memberId) => [`mutation($input: ChangeMemberRoleInput!) { changeMemberRole(input: $input) { __typename } }`, { memberId, role: 'READ_ONLY' }]],
      ['removal', (memberId) => [`mutation($input: RemoveMemberInput!) { removeMember(input: $input) { __typename } }`, { memberId }]],
      ['reset', (memberId) => [`mutation($input: ResetMemberPasswordInput!) { resetMemberPassword(input: $input) { __typename } }`, { memberId, password: 'another good password' }]],
    ];
    for (const [label, change] of changes) {
      const m = await member(`${label}@example.com`);
      const socket = connect(null, { cookie: await m.session(), origin });
      await streaming(socket, `Before ${label}`);
      const [query, input] = change(m.id);
      expect(ok(await s.gql(query, { input }, { token: tenant.token })), label).not.toMatchObject({ __typename: expect.stringMatching(/Error$/) });
      expect(await closeCode(socket), label).toBe(4403);
    }
    expect(await closeCode(bystander, 200)).toBe('open');

    const m = await member('changer@example.com');
    const [mine, other] = [await m.session(), await m.session()];
    const stays = connect(null, { cookie: mine, origin });
    const gone = connect(null, { cookie: other, origin });
    await Promise.all([streaming(stays, 'Mine'), streaming(gone, 'Other')]);
    const changed = await s.gql(
      `mutation { changePassword(input: { currentPassword: "${PASSWORD}", newPassword: "another good password" }) { __typename } }`,
      {},
      { headers: { cookie: mine } },
    );
    expect(ok(changed).changePassword.__typename).toBe('ChangePasswordPayload');
    expect(await closeCode(gone)).toBe(4403);
    expect(await closeCode(stays, 300)).toBe('open');
  });

  it("removing or demoting a member closes the sockets of the API tokens that go with it (4403); the member's other tokens stream on", async () => {
    const member = async (email: string) => {
      const r = ok(await s.gql(`mutation($input: CreateMemberInput!) { createMember(input: $input) { ... on Member { id } } }`, { input: { email, password: PASSWORD, role: 'ADMIN' } }, { token: tenant.token }));
      const res = await s.gql(SIGN_IN, { input: { tenant: tenant.slug, email, password: PASSWORD } });
      const cookie = res.response.headers.get('set-cookie')!.split(';')[0]!;
      const mint = async (name: string, role: string) =>
        ok(await s.gql(CREATE_TOKEN, { input: { name, role } }, { headers: { cookie } })).createApiToken as { token: string; apiToken: { id: string } };
      return { id: r.createMember.id as string, mint };
    };
    const removed = await member('leaver@example.com');
    const demoted = await member('demoted@example.com');
    const sockets = {
      removed: connect((await removed.mint('leaver ci', 'SUPPORT')).token),
      demotedAdmin: connect((await demoted.mint('demoted admin', 'ADMIN')).token),
      demotedSupport: connect((await demoted.mint('demoted support', 'SUPPORT')).token),
    };
    const subs = {
      removed: await streaming(sockets.removed, 'Leaver'),
      demotedAdmin: await streaming(sockets.demotedAdmin, 'Demoted admin'),
      demotedSupport: await streaming(sockets.demotedSupport, 'Demoted support'),
    };
    ok(await s.gql(`mutation($input: RemoveMemberInput!) { removeMember(input: $input) { __typename } }`, { input: { memberId: removed.id } }, { token: tenant.token }));
    ok(await s.gql(`mutation($input: ChangeMemberRoleInput!) { changeMemberRole(input: $input) { __typename } }`, { input: { memberId: demoted.id, role: 'SUPPORT' } }, { token: tenant.token }));
    expect(await sockets.removed.closed).toBe(4403);
    expect(await sockets.demotedAdmin.closed).toBe(4403);
    // The token within the new role keeps streaming: it gets an event after both changes.
    ok(await s.gql(CREATE_CUSTOMER, { name: 'After the changes' }, { token: tenant.token }));
    await subs.demotedSupport.until((items) => names(items).includes('After the changes'));
    for (const gone of [subs.removed, subs.demotedAdmin]) expect(names(gone.items)).not.toContain('After the changes');
  });

  it('the re-check closes the socket of a session that expired while it was open (4403), and only that', async () => {
    const [cookie, fresh] = [await signIn(), await signIn()];
    const expiring = connect(null, { cookie, origin });
    const stays = connect(null, { cookie: fresh, origin });
    const token = connect(tenant.token);
    await Promise.all([streaming(expiring, 'Expiring'), streaming(stays, 'Fresh'), streaming(token, 'Token')]);

    const secret = decodeURIComponent(cookie.split('=')[1]!);
    const { count } = await s.db.prisma.session.updateMany({ where: { tokenHash: hashSecret(secret) }, data: { expiresAt: new Date(Date.now() - 1000) } });
    expect(count).toBe(1);

    const before = await s.db.prisma.session.findUniqueOrThrow({ where: { tokenHash: hashSecret(decodeURIComponent(fresh.split('=')[1]!)) } });
    expect(await socketGuardOf(s.app.deps).recheck()).toBe(1);
    expect(await closeCode(expiring)).toBe(4403);
    expect(await closeCode(stays, 200)).toBe('open');
    expect(await closeCode(token, 200)).toBe('open');
    // Re-checking is no use of the session: it does not slide its expiry.
    const after = await s.db.prisma.session.findUniqueOrThrow({ where: { id: before.id } });
    expect(after.expiresAt).toEqual(before.expiresAt);
  });

  it('the re-check closes the socket of a session past its maximum age from sign-in (4403), whatever its expiry says', async () => {
    const [cookie, fresh] = [await signIn(), await signIn()];
    const old = connect(null, { cookie, origin });
    const stays = connect(null, { cookie: fresh, origin });
    await Promise.all([streaming(old, 'Old session'), streaming(stays, 'Young session')]);
    const secret = decodeURIComponent(cookie.split('=')[1]!);
    await s.db.prisma.session.update({
      where: { tokenHash: hashSecret(secret) },
      data: { createdAt: new Date(Date.now() - SESSION_MAX_AGE_MS - 1000), expiresAt: new Date(Date.now() + 3600_000) },
    });
    expect(await socketGuardOf(s.app.deps).recheck()).toBe(1);
    expect(await closeCode(old)).toBe(4403);
    expect(await closeCode(stays, 200)).toBe('open');
  });

  it('the re-check closes the socket of an API token whose expiry passed while it was open (4403), and only that', async () => {
    const [expiring, kept] = [await newToken('expiring'), await newToken('no expiry')];
    const gone = connect(expiring.token);
    const stays = connect(kept.token);
    await Promise.all([streaming(gone, 'Token expiring'), streaming(stays, 'Token kept')]);

    await s.db.prisma.apiToken.update({ where: { tokenHash: hashSecret(expiring.token) }, data: { expiresAt: new Date(Date.now() - 1000) } });
    expect(await socketGuardOf(s.app.deps).recheck()).toBe(1);
    expect(await closeCode(gone)).toBe(4403);
    expect(await closeCode(stays, 200)).toBe('open');
  });
});

// Two instances on one PostgreSQL database, each with its own database pool and Redis connections.
describe.skipIf(!testDatabaseUrl)('open sockets across two instances through Redis', () => {
  const redisUrl = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
  // A channel prefix of our own, so parallel runs sharing the Redis never see each other's events.
  const busPrefix = `tessera-test-${randomBytes(6).toString('hex')}`;
  let fresh: Awaited<ReturnType<typeof freshPostgres>>;
  const dbs: Database[] = [];
  const apps: App[] = [];
  const clients: WsClient[] = [];

  beforeAll(async () => {
    fresh = await freshPostgres(testDatabaseUrl!);
    const config = { ...loadConfig({ ...testEnv, REDIS_URL: redisUrl }), seedDemo: false };
    for (let i = 0; i < 2; i++) {
      const db = await openDatabase({ url: fresh.url, poolSize: 5 });
      dbs.push(db);
      apps.push(await buildApp({ config, db, busPrefix }));
    }
  }, 60_000);
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.dispose()));
    for (const app of apps) await app.stop();
    for (const db of dbs) await db.close();
    await fresh?.drop();
  }, 60_000);

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

  it('a token revoked through instance A closes its socket on instance B (4403)', async () => {
    const [a, b] = apps as [App, App];
    const ctx = { app: a.deps, prisma: a.deps.prisma, actor: { kind: 'anonymous' as const }, requestId: 'test' };
    const { adminToken } = await createTenant(ctx, { slug: `sr-${randomBytes(4).toString('hex')}` });
    const { token, apiToken } = (await gql(a, adminToken, CREATE_TOKEN, { input: { name: 'on B', role: 'READ_ONLY' } })).createApiToken;

    const onB = wsClient(await listen(b), token);
    clients.push(onB);
    const sub = subscribe<Ev>(onB.client, ACTIVITY, {}, (d) => d.activity);
    // Live events from A reach B (B's Redis channel for the tenant is subscribed): retried, as B
    // subscribes to Redis in its own time and a live-only feed misses what came before.
    for (let i = 0; !names(sub.items).length; i++) {
      if (i === 50) throw new Error('no live event from A reached B');
      await gql(a, adminToken, CREATE_CUSTOMER, { name: `Via A ${i}` });
      await sleep(200);
    }

    expect((await gql(a, adminToken, REVOKE_TOKEN, { id: apiToken.id })).revokeApiToken.__typename).toBe('ApiToken');
    expect(await closeCode(onB)).toBe(4403);
    await gql(a, adminToken, CREATE_CUSTOMER, { name: 'After' });
    await sleep(300);
    expect(names(sub.items)).not.toContain('After');
  }, 30_000);
});
