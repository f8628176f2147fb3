import { decodeGlobalID, encodeGlobalID } from '@pothos/plugin-relay';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ok, startTestServer, type TestServer } from '../../../test/harness.ts';
import { createTenant } from './service.ts';
import { hashSecret } from './secrets.ts';

let s: TestServer;
let tenant: { id: string; slug: string; token: string };
beforeAll(async () => {
  s = await startTestServer();
  tenant = await s.tenant();
});
afterAll(() => s.close());

const operatorCtx = () => ({ app: s.app.deps, prisma: s.app.deps.prisma, actor: { kind: 'anonymous' } as const, requestId: 'test' });

const VIEWER = `{ viewer { tenantId role memberId } }`;
const CREATE_MEMBER = `mutation($input: CreateMemberInput!) {
  createMember(input: $input) { __typename ... on Member { id email role } ... on Error { message } ... on ValidationError { fields { path message } } }
}`;
const SIGN_IN = `mutation($input: SignInInput!) {
  signIn(input: $input) { __typename ... on SignInSuccess { memberId tenantId } ... on ValidationError { message fields { path message } } }
}`;
const CREATE_TOKEN = `mutation($input: CreateApiTokenInput!) {
  createApiToken(input: $input) {
    __typename
    ... on CreateApiTokenPayload { token apiToken { id name role prefix lastUsedAt expiresAt revokedAt } }
    ... on Error { message }
    ... on ValidationError { fields { path message } }
  }
}`;
const REVOKE_TOKEN = `mutation($id: ID!) {
  revokeApiToken(input: { id: $id }) { __typename ... on ApiToken { id revokedAt } ... on Error { message } }
}`;
const CREATE_PRODUCT = `mutation($input: CreateProductInput!) {
  createProduct(input: $input) { __typename ... on Product { id code } ... on Error { message } }
}`;

async function token(role: 'OWNER' | 'ADMIN' | 'SUPPORT' | 'READ_ONLY', name = `${role} token`) {
  const r = ok(await s.gql(CREATE_TOKEN, { input: { name, role } }, { token: tenant.token }));
  expect(r.createApiToken.__typename).toBe('CreateApiTokenPayload');
  return r.createApiToken as { token: string; apiToken: { id: string; prefix: string } };
}

function sessionFrom(response: Response): string {
  const cookie = response.headers.get('set-cookie') ?? '';
  const m = /tessera_session=([^;]*)/.exec(cookie);
  return m?.[1] ?? '';
}

describe('tenant create', () => {
  it('creates a tenant with an OWNER token that authenticates', async () => {
    const { tenant: t, adminToken } = await createTenant(operatorCtx(), { slug: 'acme-corp', name: 'Acme Corp' });
    expect(t.slug).toBe('acme-corp');
    expect(t.name).toBe('Acme Corp');
    const v = ok(await s.gql(VIEWER, {}, { token: adminToken }));
    expect(v.viewer).toEqual({ tenantId: t.id, role: 'OWNER', memberId: null });
    const row = await s.db.prisma.apiToken.findFirstOrThrow({ where: { tenantId: t.id } });
    expect(row.tokenHash).toBe(hashSecret(adminToken));
    expect(row.role).toBe('OWNER');
    const events = await s.db.prisma.auditEvent.findMany({ where: { tenantId: t.id }, orderBy: { id: 'asc' } });
    expect(events.map((e) => e.type)).toEqual(['tenant.created', 'api_token.created']);
    expect(JSON.stringify(events, (_k, v) => (typeof v === 'bigint' ? v.toString() : v))).not.toContain(adminToken);
  });

  it('rejects a duplicate slug with ConflictError and a bad slug with ValidationError, writing nothing', async () => {
    await createTenant(operatorCtx(), { slug: 'dup-slug' });
    const before = { tenants: await s.db.prisma.tenant.count(), tokens: await s.db.prisma.apiToken.count(), events: await s.db.prisma.auditEvent.count() };
    await expect(createTenant(operatorCtx(), { slug: 'dup-slug' })).rejects.toMatchObject({ name: 'ConflictError' });
    for (const slug of ['Bad Slug', '-x', 'x', 'a'.repeat(41), 'ab-']) {
      await expect(createTenant(operatorCtx(), { slug })).rejects.toMatchObject({ name: 'ValidationError', fields: [{ path: 'slug' }] });
    }
    await expect(createTenant(operatorCtx(), { slug: 'ok-slug', name: 'n'.repeat(10_000) })).rejects.toMatchObject({
      name: 'ValidationError',
      fields: [{ path: 'name' }],
    });
    expect({ tenants: await s.db.prisma.tenant.count(), tokens: await s.db.prisma.apiToken.count(), events: await s.db.prisma.auditEvent.count() }).toEqual(before);
  });

  it('concurrent creates of one slug give exactly one tenant', async () => {
    const results = await Promise.allSettled(Array.from({ length: 8 }, () => createTenant(operatorCtx(), { slug: 'race-slug' })));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    for (const r of results) if (r.status === 'rejected') expect(r.reason).toMatchObject({ name: 'ConflictError' });
    expect(await s.db.prisma.tenant.count({ where: { slug: 'race-slug' } })).toBe(1);
  });
});

describe('members and sessions', () => {
  const password = 'correct horse battery';

  it('creates members with each role; rejects duplicates and bad input without writing', async () => {
    for (const role of ['OWNER', 'ADMIN', 'SUPPORT', 'READ_ONLY'] as const) {
      const r = ok(await s.gql(CREATE_MEMBER, { input: { email: `${role.toLowerCase()}@Example.com`, password, role } }, { token: tenant.token }));
      expect(r.createMember).toMatchObject({ __typename: 'Member', email: `${role.toLowerCase()}@example.com`, role });
    }
    const users = await s.db.prisma.user.findMany({ where: { tenantId: tenant.id } });
    expect(users).toHaveLength(4);
    for (const u of users) {
      expect(u.passwordHash).toMatch(/^\$argon2id\$/);
      expect(u.passwordHash).not.toContain(password);
    }
    const count = await s.db.prisma.user.count();
    const dup = ok(await s.gql(CREATE_MEMBER, { input: { email: 'ADMIN@example.com', password, role: 'ADMIN' } }, { token: tenant.token }));
    expect(dup.createMember.__typename).toBe('ConflictError');
    const bad = ok(
      await s.gql(CREATE_MEMBER, { input: { email: 'not-an-email', password: 'short', name: 'x'.repeat(10_000), role: 'ADMIN' } }, { token: tenant.token }),
    );
    expect(bad.createMember.__typename).toBe('ValidationError');
    expect(bad.createMember.fields.map((f: { path: string }) => f.path).sort()).toEqual(['email', 'name', 'password']);
    expect(await s.db.prisma.user.count()).toBe(count);
  });

  it('an ADMIN adds members below OWNER; only an OWNER adds an owner; below ADMIN nobody adds members', async () => {
    const admin = await token('ADMIN', 'admin for members');
    const support = await token('SUPPORT', 'support for members');
    for (const role of ['ADMIN', 'SUPPORT', 'READ_ONLY'] as const) {
      const email = `by-admin-${role.toLowerCase()}@example.com`;
      const r = ok(await s.gql(CREATE_MEMBER, { input: { email, password, role } }, { token: admin.token }));
      expect(r.createMember, role).toMatchObject({ __typename: 'Member', email, role });
    }
    const before = { users: await s.db.prisma.user.count(), events: await s.db.prisma.auditEvent.count() };
    const owner = ok(await s.gql(CREATE_MEMBER, { input: { email: 'x@example.com', password, role: 'OWNER' } }, { token: admin.token }));
    expect(owner.createMember).toMatchObject({ __typename: 'ValidationError', fields: [{ path: 'role', message: expect.stringMatching(/owner/) }] });
    const denied = await s.gql(CREATE_MEMBER, { input: { email: 'x@example.com', password, role: 'READ_ONLY' } }, { token: support.token });
    expect(denied.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect({ users: await s.db.prisma.user.count(), events: await s.db.prisma.auditEvent.count() }).toEqual(before);
    expect(await s.db.prisma.user.count({ where: { email: 'x@example.com' } })).toBe(0);
  });

  it('signs in with email + password: an HttpOnly session cookie that authenticates', async () => {
    const r = await s.gql(SIGN_IN, { input: { tenant: tenant.slug, email: 'Support@example.com', password } });
    expect(ok(r).signIn.__typename).toBe('SignInSuccess');
    const cookie = r.response.headers.get('set-cookie') ?? '';
    expect(cookie).toMatch(/^tessera_session=tss_/);
    expect(cookie).toContain('HttpOnly');
    expect(cookie).toContain('SameSite=Lax');
    // The browser keeps the cookie for the session's maximum age (7 days); the server ends it sooner when idle.
    expect(cookie).toContain(`Max-Age=${7 * 24 * 3600}`);
    const secret = sessionFrom(r.response);
    const sessions = await s.db.prisma.session.findMany();
    expect(sessions.some((x) => x.tokenHash === hashSecret(secret))).toBe(true);
    expect(JSON.stringify(sessions)).not.toContain(secret);

    const v = ok(await s.gql(VIEWER, {}, { headers: { cookie: `other=1; tessera_session=${secret}` } }));
    const user = await s.db.prisma.user.findFirstOrThrow({ where: { tenantId: tenant.id, email: 'support@example.com' } });
    expect(v.viewer).toEqual({ tenantId: tenant.id, role: 'SUPPORT', memberId: user.id });
    expect(user.lastLoginAt).not.toBeNull();

    // The session carries the member's role.
    const denied = await s.gql(CREATE_PRODUCT, { input: { name: 'P', code: 'session-p' } }, { headers: { cookie: `tessera_session=${secret}` } });
    expect(denied.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
  });

  it('gives the same ValidationError for a wrong password, an unknown email and an unknown tenant', async () => {
    const attempts = [
      { tenant: tenant.slug, email: 'admin@example.com', password: 'wrong password!' },
      { tenant: tenant.slug, email: 'nobody@example.com', password },
      { tenant: 'no-such-tenant', email: 'admin@example.com', password },
      { tenant: tenant.slug, email: 'x'.repeat(10_000), password },
    ];
    const sessions = await s.db.prisma.session.count();
    const answers = [];
    for (const input of attempts) {
      const r = await s.gql(SIGN_IN, { input });
      expect(r.response.headers.get('set-cookie')).toBeNull();
      answers.push(ok(r).signIn);
    }
    expect(answers[0].__typename).toBe('ValidationError');
    for (const a of answers) expect(a).toEqual(answers[0]);
    expect(await s.db.prisma.session.count()).toBe(sessions);
  });

  it('signOut ends the session and clears the cookie', async () => {
    const r = await s.gql(SIGN_IN, { input: { tenant: tenant.slug, email: 'admin@example.com', password } });
    const secret = sessionFrom(r.response);
    const headers = { cookie: `tessera_session=${secret}` };
    expect(ok(await s.gql(VIEWER, {}, { headers })).viewer.role).toBe('ADMIN');
    const out = await s.gql(`mutation { signOut }`, {}, { headers });
    expect(ok(out).signOut).toBe(true);
    expect(out.response.headers.get('set-cookie')).toMatch(/^tessera_session=; Max-Age=0/);
    expect(ok(await s.gql(VIEWER, {}, { headers })).viewer).toBeNull();
    expect(await s.db.prisma.session.count({ where: { tokenHash: hashSecret(secret) } })).toBe(0);
    const user = await s.db.prisma.user.findFirstOrThrow({ where: { tenantId: tenant.id, email: 'admin@example.com' } });
    const events = await s.db.prisma.auditEvent.findMany({ where: { subjectId: user.id }, orderBy: { occurredAt: 'asc' } });
    expect(events.map((e) => e.type).slice(-2)).toEqual(['member.signed_in', 'member.signed_out']);
    // Signing out again (the session is gone) is harmless.
    expect(ok(await s.gql(`mutation { signOut }`, {}, { headers })).signOut).toBe(false);
  });

  it('a bogus, malformed or expired session is anonymous', async () => {
    for (const cookie of ['tessera_session=tss_bogus', 'tessera_session=%E0%A4%A', 'tessera_session=', 'tessera_session', '=;;=']) {
      const r = await s.gql(VIEWER, {}, { headers: { cookie } });
      expect(r.response.status, cookie).toBe(200);
      expect(ok(r).viewer, cookie).toBeNull();
    }
    // A bad cookie beside a good bearer token does not get in the way.
    const withToken = await s.gql(VIEWER, {}, { token: tenant.token, headers: { cookie: 'tessera_session=%zz' } });
    expect(ok(withToken).viewer.role).toBe('OWNER');
    const r = await s.gql(SIGN_IN, { input: { tenant: tenant.slug, email: 'owner@example.com', password } });
    const secret = sessionFrom(r.response);
    await s.db.prisma.session.update({ where: { tokenHash: hashSecret(secret) }, data: { expiresAt: new Date(Date.now() - 1000) } });
    const q = await s.gql(`{ products { id } }`, {}, { headers: { cookie: `tessera_session=${secret}` } });
    expect(q.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });
});

describe('API tokens', () => {
  it('shows the secret once, stores only its hash, records lastUsedAt, and stops working when revoked', async () => {
    const created = await token('ADMIN', 'CI token');
    expect(created.token).toMatch(/^tsr_[A-Za-z0-9_-]{43}$/);
    expect(created.token.startsWith(created.apiToken.prefix)).toBe(true);
    const row = await s.db.prisma.apiToken.findUniqueOrThrow({ where: { tokenHash: hashSecret(created.token) } });
    expect(row.tokenHash).toBe(hashSecret(created.token));
    expect(row.lastUsedAt).toBeNull();
    // No table holds the plaintext secret.
    const dump = JSON.stringify([await s.db.prisma.apiToken.findMany(), await s.db.prisma.auditEvent.findMany()], (_k, v) =>
      typeof v === 'bigint' ? v.toString() : v,
    );
    expect(dump).not.toContain(created.token);
    // The listing never shows the secret either.
    const list = ok(await s.gql(`{ apiTokens { id name prefix } }`, {}, { token: tenant.token }));
    expect(JSON.stringify(list)).not.toContain(created.token);
    expect(list.apiTokens.map((t: { name: string }) => t.name)).toContain('CI token');

    const v = ok(await s.gql(VIEWER, {}, { token: created.token }));
    expect(v.viewer).toEqual({ tenantId: tenant.id, role: 'ADMIN', memberId: null });
    const used = await s.db.prisma.apiToken.findUniqueOrThrow({ where: { id: row.id } });
    expect(used.lastUsedAt).not.toBeNull();

    const revoked = ok(await s.gql(REVOKE_TOKEN, { id: created.apiToken.id }, { token: tenant.token }));
    expect(revoked.revokeApiToken.__typename).toBe('ApiToken');
    expect(revoked.revokeApiToken.revokedAt).not.toBeNull();
    expect(ok(await s.gql(VIEWER, {}, { token: created.token })).viewer).toBeNull();
    const denied = await s.gql(CREATE_PRODUCT, { input: { name: 'x', code: 'x' } }, { token: created.token });
    expect(denied.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    const again = ok(await s.gql(REVOKE_TOKEN, { id: created.apiToken.id }, { token: tenant.token }));
    expect(again.revokeApiToken.__typename).toBe('ConflictError');
  });

  it('a token with an expiry works until then and authenticates nothing after; bad expiries are refused and write nothing', async () => {
    const until = new Date(Date.now() + 30 * 86_400_000);
    const r = ok(await s.gql(CREATE_TOKEN, { input: { name: 'thirty days', role: 'SUPPORT', expiresAt: until.toISOString() } }, { token: tenant.token }));
    expect(r.createApiToken.__typename).toBe('CreateApiTokenPayload');
    expect(r.createApiToken.apiToken.expiresAt).toBe(until.toISOString());
    const { token: secret, apiToken } = r.createApiToken as { token: string; apiToken: { id: string } };
    expect(ok(await s.gql(VIEWER, {}, { token: secret })).viewer).toEqual({ tenantId: tenant.id, role: 'SUPPORT', memberId: null });
    const listed = ok(await s.gql(`{ apiTokens { id expiresAt } }`, {}, { token: tenant.token }));
    expect(listed.apiTokens.find((t: { id: string }) => t.id === apiToken.id).expiresAt).toBe(until.toISOString());
    const row = await s.db.prisma.apiToken.findUniqueOrThrow({ where: { tokenHash: hashSecret(secret) } });
    expect(row.expiresAt).toEqual(until);
    const event = await s.db.prisma.auditEvent.findFirstOrThrow({ where: { tenantId: tenant.id, type: 'api_token.created', subjectId: row.id } });
    expect(event.payload).toMatchObject({ name: 'thirty days', role: 'SUPPORT', expiresAt: until.toISOString() });

    // The moment passes (moved into the past here, rather than waited for).
    await s.db.prisma.apiToken.update({ where: { id: row.id }, data: { expiresAt: new Date(Date.now() - 1000) } });
    expect(ok(await s.gql(VIEWER, {}, { token: secret })).viewer).toBeNull();
    const denied = await s.gql(CREATE_PRODUCT, { input: { name: 'x', code: 'x' } }, { token: secret });
    expect(denied.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');

    const count = await s.db.prisma.apiToken.count();
    for (const [expiresAt, message] of [
      [new Date(Date.now() - 60_000).toISOString(), 'must be in the future'],
      [new Date(Date.now() + 3_651 * 86_400_000).toISOString(), 'must be at most ten years ahead'],
    ]) {
      const bad = ok(await s.gql(CREATE_TOKEN, { input: { name: 'bad expiry', role: 'READ_ONLY', expiresAt } }, { token: tenant.token }));
      expect(bad.createApiToken).toMatchObject({ __typename: 'ValidationError', fields: [{ path: 'expiresAt', message }] });
    }
    const garbled = await s.gql(CREATE_TOKEN, { input: { name: 'bad expiry', role: 'READ_ONLY', expiresAt: 'next tuesday' } }, { token: tenant.token });
    expect(garbled.errors?.[0]?.message).toMatch(/expiresAt/);
    expect(await s.db.prisma.apiToken.count()).toBe(count);
  });

  it('a token with an expiry cannot mint a token that outlives it', async () => {
    const until = new Date(Date.now() + 86_400_000);
    const r = ok(await s.gql(CREATE_TOKEN, { input: { name: 'one day', role: 'ADMIN', expiresAt: until.toISOString() } }, { token: tenant.token }));
    const temporary = r.createApiToken.token as string;
    const count = await s.db.prisma.apiToken.count();
    for (const expiresAt of [null, new Date(until.getTime() + 60_000).toISOString()]) {
      const bad = ok(await s.gql(CREATE_TOKEN, { input: { name: 'forever', role: 'ADMIN', expiresAt } }, { token: temporary }));
      expect(bad.createApiToken, String(expiresAt)).toMatchObject({ __typename: 'ValidationError', fields: [{ path: 'expiresAt', message: expect.stringMatching(/outlive/) }] });
    }
    expect(await s.db.prisma.apiToken.count()).toBe(count);
    const within = new Date(until.getTime() - 60_000);
    const good = ok(await s.gql(CREATE_TOKEN, { input: { name: 'shorter', role: 'SUPPORT', expiresAt: within.toISOString() } }, { token: temporary }));
    expect(good.createApiToken).toMatchObject({ __typename: 'CreateApiTokenPayload', apiToken: { expiresAt: within.toISOString() } });
    // A token without an expiry (the tenant's owner token here) may still mint tokens without one.
    const open = ok(await s.gql(CREATE_TOKEN, { input: { name: 'open', role: 'READ_ONLY' } }, { token: tenant.token }));
    expect(open.createApiToken).toMatchObject({ __typename: 'CreateApiTokenPayload', apiToken: { expiresAt: null } });
  });

  it('an ADMIN cannot mint an OWNER token; bad input is a ValidationError; nothing is written', async () => {
    const admin = await token('ADMIN', 'admin minting');
    const count = await s.db.prisma.apiToken.count();
    const owner = ok(await s.gql(CREATE_TOKEN, { input: { name: 'escalate', role: 'OWNER' } }, { token: admin.token }));
    expect(owner.createApiToken.__typename).toBe('ValidationError');
    expect(owner.createApiToken.fields[0].path).toBe('role');
    const long = ok(await s.gql(CREATE_TOKEN, { input: { name: 'n'.repeat(10_000), role: 'READ_ONLY' } }, { token: tenant.token }));
    expect(long.createApiToken.__typename).toBe('ValidationError');
    expect(long.createApiToken.fields[0].path).toBe('name');
    const malformed = ok(await s.gql(REVOKE_TOKEN, { id: 'not-an-id' }, { token: tenant.token }));
    expect(malformed.revokeApiToken.__typename).toBe('ValidationError');
    const unknown = ok(await s.gql(REVOKE_TOKEN, { id: '7d3f2c9a-2b4e-4c1a-9f1e-0a1b2c3d4e5f' }, { token: tenant.token }));
    expect(unknown.revokeApiToken.__typename).toBe('NotFoundError');
    expect(await s.db.prisma.apiToken.count()).toBe(count);
  });

  it("an ADMIN cannot revoke an OWNER's token; an OWNER can; tokens minted in a session record their creator", async () => {
    const admin = await token('ADMIN', 'admin revoking');
    const owner = await token('OWNER', 'second owner');
    const denied = await s.gql(REVOKE_TOKEN, { id: owner.apiToken.id }, { token: admin.token });
    expect(denied.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(ok(await s.gql(VIEWER, {}, { token: owner.token })).viewer.role).toBe('OWNER');
    const support = await token('SUPPORT', 'support to revoke');
    expect(ok(await s.gql(REVOKE_TOKEN, { id: support.apiToken.id }, { token: admin.token })).revokeApiToken.__typename).toBe('ApiToken');
    expect(ok(await s.gql(REVOKE_TOKEN, { id: owner.apiToken.id }, { token: tenant.token })).revokeApiToken.__typename).toBe('ApiToken');

    const r = await s.gql(SIGN_IN, { input: { tenant: tenant.slug, email: 'admin@example.com', password: 'correct horse battery' } });
    const cookie = `tessera_session=${sessionFrom(r.response)}`;
    const minted = ok(await s.gql(CREATE_TOKEN, { input: { name: 'from console', role: 'READ_ONLY' } }, { headers: { cookie } }));
    const row = await s.db.prisma.apiToken.findUniqueOrThrow({ where: { tokenHash: hashSecret(minted.createApiToken.token) } });
    expect(row.createdById).toBe(ok(r).signIn.memberId);
  });

  it('lastUsedAt is refreshed at most once a minute; a session slides on use', async () => {
    const t = await token('READ_ONLY', 'touch');
    const where = { tokenHash: hashSecret(t.token) };
    const old = new Date(Date.now() - 5 * 60_000);
    await s.db.prisma.apiToken.update({ where, data: { lastUsedAt: old } });
    ok(await s.gql(VIEWER, {}, { token: t.token }));
    const first = (await s.db.prisma.apiToken.findUniqueOrThrow({ where })).lastUsedAt!;
    expect(first.getTime()).toBeGreaterThan(old.getTime());
    ok(await s.gql(VIEWER, {}, { token: t.token }));
    expect((await s.db.prisma.apiToken.findUniqueOrThrow({ where })).lastUsedAt).toEqual(first);

    const r = await s.gql(SIGN_IN, { input: { tenant: tenant.slug, email: 'read_only@example.com', password: 'correct horse battery' } });
    const secret = sessionFrom(r.response);
    const sessionWhere = { tokenHash: hashSecret(secret) };
    const soon = new Date(Date.now() + 60_000);
    await s.db.prisma.session.update({ where: sessionWhere, data: { lastUsedAt: old, expiresAt: soon } });
    expect(ok(await s.gql(VIEWER, {}, { headers: { cookie: `tessera_session=${secret}` } })).viewer.role).toBe('READ_ONLY');
    const slid = await s.db.prisma.session.findUniqueOrThrow({ where: sessionWhere });
    expect(slid.expiresAt.getTime()).toBeGreaterThan(Date.now() + 11 * 3600_000);
  });

  it('garbage credentials are anonymous', async () => {
    for (const authorization of ['Bearer nope', 'Basic abc', 'Bearer ', `Bearer ${'x'.repeat(10_000)}`]) {
      const r = await s.gql(`{ products { id } }`, {}, { headers: { authorization } });
      expect(r.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    }
  });
});

describe('roles', () => {
  let licenseId: string;
  beforeAll(async () => {
    const p = ok(await s.gql(CREATE_PRODUCT, { input: { name: 'Roles', code: 'roles' } }, { token: tenant.token })).createProduct;
    const e = ok(
      await s.gql(
        `mutation($input: CreateEditionInput!) { createEdition(input: $input) { __typename ... on Edition { id } } }`,
        { input: { productId: p.id, name: 'Std', code: 'std', licenseType: 'PERPETUAL' } },
        { token: tenant.token },
      ),
    ).createEdition;
    const l = ok(
      await s.gql(
        `mutation($input: CreateLicenseInput!) { createLicense(input: $input) { __typename ... on CreateLicensePayload { license { id } } } }`,
        { input: { editionId: e.id } },
        { token: tenant.token },
      ),
    ).createLicense;
    licenseId = l.license.id;
  });

  const SUSPEND = `mutation($id: ID!) { suspendLicense(input: { licenseId: $id }) { __typename ... on License { status } } }`;
  const REINSTATE = `mutation($id: ID!) { reinstateLicense(input: { licenseId: $id }) { __typename ... on License { status } } }`;
  const CREATE_CUSTOMER = `mutation { createCustomer(input: { name: "Cust" }) { __typename } }`;

  it('READ_ONLY can query but every mutation is FORBIDDEN', async () => {
    const ro = await token('READ_ONLY');
    const q = ok(await s.gql(`{ products { code } licenses(first: 5) { totalCount } tenant { slug } }`, {}, { token: ro.token }));
    expect(q.products.map((p: { code: string }) => p.code)).toContain('roles');
    expect(q.licenses.totalCount).toBeGreaterThanOrEqual(1);
    const before = await s.db.prisma.product.count();
    for (const [m, vars] of [
      [CREATE_PRODUCT, { input: { name: 'RO', code: 'ro' } }],
      [SUSPEND, { id: licenseId }],
      [CREATE_CUSTOMER, {}],
      [CREATE_TOKEN, { input: { name: 'ro', role: 'READ_ONLY' } }],
    ] as const) {
      const r = await s.gql(m, vars, { token: ro.token });
      expect(r.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    }
    expect(await s.db.prisma.product.count()).toBe(before);
    expect((await s.db.prisma.license.findUniqueOrThrow({ where: { id: decodeGlobalID(licenseId).id } })).state).toBe('ACTIVE');
    // READ_ONLY sees no token list.
    const tokens = await s.gql(`{ apiTokens { id } }`, {}, { token: ro.token });
    expect(tokens.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    // Nor a license's single-use token keys (they activate devices); the license itself it sees.
    const keys = await s.gql(`query($id: ID!) { node(id: $id) { ... on License { tokenKeys { key } } } }`, { id: licenseId }, { token: ro.token });
    expect(keys.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const seen = ok(await s.gql(`query($id: ID!) { node(id: $id) { ... on License { key status } } }`, { id: licenseId }, { token: ro.token }));
    expect(seen.node.status).toBe('ACTIVE');
  });

  it('SUPPORT can suspend, reinstate and add customers but not create products', async () => {
    const support = await token('SUPPORT');
    expect(ok(await s.gql(SUSPEND, { id: licenseId }, { token: support.token })).suspendLicense).toEqual({ __typename: 'License', status: 'SUSPENDED' });
    expect(ok(await s.gql(REINSTATE, { id: licenseId }, { token: support.token })).reinstateLicense).toEqual({ __typename: 'License', status: 'ACTIVE' });
    expect(ok(await s.gql(CREATE_CUSTOMER, {}, { token: support.token })).createCustomer.__typename).toBe('Customer');
    const r = await s.gql(CREATE_PRODUCT, { input: { name: 'S', code: 'support-p' } }, { token: support.token });
    expect(r.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const revoke = await s.gql(`mutation($id: ID!) { revokeLicense(input: { licenseId: $id }) { __typename } }`, { id: licenseId }, { token: support.token });
    expect(revoke.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(await s.db.prisma.product.count({ where: { code: 'support-p' } })).toBe(0);
  });

  it('no credentials gives UNAUTHENTICATED on queries and mutations', async () => {
    for (const q of [`{ products { id } }`, `{ licenses { totalCount } }`, `{ tenant { id } }`, CREATE_CUSTOMER]) {
      const r = await s.gql(q);
      expect(r.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    }
    const r = await s.gql(SUSPEND, { id: licenseId });
    expect(r.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect(ok(await s.gql(VIEWER)).viewer).toBeNull();
  });
});

describe('tenant isolation of members and tokens', () => {
  it("another tenant's owner sees none of this tenant's members or tokens and cannot revoke them", async () => {
    const other = await s.tenant();
    const mineToken = await token('SUPPORT', 'isolation token');
    const member = await s.db.prisma.user.findFirstOrThrow({ where: { tenantId: tenant.id } });
    const memberGlobal = Buffer.from(`Member:${member.id}`).toString('base64');
    const lists = ok(await s.gql(`{ members { id } apiTokens { id } tenant { id } }`, {}, { token: other.token }));
    expect(lists.members).toEqual([]);
    expect(lists.apiTokens).toHaveLength(1); // its own initial token
    expect(lists.tenant.id).toBe(other.id);
    for (const id of [mineToken.apiToken.id, memberGlobal]) {
      expect(ok(await s.gql(`query($id: ID!) { node(id: $id) { id } }`, { id }, { token: other.token })).node).toBeNull();
    }
    const r = ok(await s.gql(REVOKE_TOKEN, { id: mineToken.apiToken.id }, { token: other.token }));
    expect(r.revokeApiToken.__typename).toBe('NotFoundError');
    expect(ok(await s.gql(VIEWER, {}, { token: mineToken.token })).viewer.tenantId).toBe(tenant.id);
    // The same email may be a member of both tenants; each signs in to its own.
    const m = ok(await s.gql(CREATE_MEMBER, { input: { email: 'admin@example.com', password: 'another long password', role: 'ADMIN' } }, { token: other.token }));
    expect(m.createMember.__typename).toBe('Member');
    const wrong = ok(await s.gql(SIGN_IN, { input: { tenant: other.slug, email: 'admin@example.com', password: 'correct horse battery' } }));
    expect(wrong.signIn.__typename).toBe('ValidationError');
    const right = await s.gql(SIGN_IN, { input: { tenant: other.slug, email: 'admin@example.com', password: 'another long password' } });
    expect(ok(right).signIn.tenantId).toBe(other.id);
  });

  it('concurrent createMember with one email gives exactly one member', async () => {
    const results = await Promise.all(
      Array.from({ length: 6 }, () => s.gql(CREATE_MEMBER, { input: { email: 'race@example.com', password: 'a long enough password', role: 'SUPPORT' } }, { token: tenant.token })),
    );
    const kinds = results.map((r) => ok(r).createMember.__typename);
    expect(kinds.filter((k) => k === 'Member')).toHaveLength(1);
    expect(kinds.filter((k) => k === 'ConflictError')).toHaveLength(5);
    expect(await s.db.prisma.user.count({ where: { email: 'race@example.com' } })).toBe(1);
  });
});

describe('member management', () => {
  const password = 'correct horse battery';
  const MEMBER = `__typename ... on Member { id email role } ... on Error { message } ... on ValidationError { fields { path message } }`;
  const CHANGE_ROLE = `mutation($input: ChangeMemberRoleInput!) { changeMemberRole(input: $input) { ${MEMBER} } }`;
  const REMOVE = `mutation($input: RemoveMemberInput!) {
    removeMember(input: $input) { __typename ... on RemoveMemberPayload { deletedId } ... on Error { message } ... on ValidationError { fields { path message } } }
  }`;
  const RESET = `mutation($input: ResetMemberPasswordInput!) { resetMemberPassword(input: $input) { ${MEMBER} } }`;
  const CHANGE_PASSWORD = `mutation($input: ChangePasswordInput!) {
    changePassword(input: $input) { __typename ... on ChangePasswordPayload { memberId } ... on ValidationError { message fields { path message } } }
  }`;
  type Role = 'OWNER' | 'ADMIN' | 'SUPPORT' | 'READ_ONLY';

  /** A fresh tenant with one member of each given role, each signed in once. */
  async function team(roles: Role[]) {
    const t = await s.tenant();
    const members = [];
    for (const [i, role] of roles.entries()) {
      const email = `${role.toLowerCase()}${i}@example.com`;
      const id = ok(await s.gql(CREATE_MEMBER, { input: { email, password, role } }, { token: t.token })).createMember.id as string;
      members.push({ id, uuid: decodeGlobalID(id).id, email, role, cookie: await signIn(t.slug, email) });
    }
    return { ...t, members };
  }
  async function signIn(slug: string, email: string, pw = password) {
    const r = await s.gql(SIGN_IN, { input: { tenant: slug, email, password: pw } });
    expect(ok(r).signIn.__typename, `${email}: ${JSON.stringify(r.data)}`).toBe('SignInSuccess');
    return `tessera_session=${sessionFrom(r.response)}`;
  }
  const as = (cookie: string) => ({ headers: { cookie } });
  const viewerOf = async (cookie: string) => ok(await s.gql(VIEWER, {}, as(cookie))).viewer as { role: string } | null;
  const events = (tenantId: string) => s.db.prisma.auditEvent.findMany({ where: { tenantId }, orderBy: { id: 'asc' } });
  /** Rows that a refused change must leave as they were. */
  const state = async (tenantId: string) => ({
    users: await s.db.prisma.user.findMany({ where: { tenantId }, orderBy: { email: 'asc' } }),
    sessions: await s.db.prisma.session.count({ where: { user: { tenantId } } }),
    events: await s.db.prisma.auditEvent.count({ where: { tenantId } }),
  });

  it('an OWNER changes a role: one event, the member\'s sessions end, the new role applies', async () => {
    const t = await team(['OWNER', 'ADMIN']);
    const [owner, admin] = t.members as [(typeof t.members)[0], (typeof t.members)[0]];
    const second = await signIn(t.slug, admin.email);
    const before = (await events(t.id)).length;
    const r = ok(await s.gql(CHANGE_ROLE, { input: { memberId: admin.id, role: 'SUPPORT' } }, as(owner.cookie)));
    expect(r.changeMemberRole).toMatchObject({ __typename: 'Member', id: admin.id, role: 'SUPPORT' });
    const after = await events(t.id);
    expect(after.slice(before).map((e) => [e.type, e.subjectId, e.actorId])).toEqual([['member.role_changed', admin.uuid, owner.uuid]]);
    expect(after.at(-1)!.payload).toEqual({ email: admin.email, role: { from: 'ADMIN', to: 'SUPPORT' } });
    for (const cookie of [admin.cookie, second]) expect(await viewerOf(cookie)).toBeNull();
    expect(await viewerOf(owner.cookie)).toMatchObject({ role: 'OWNER' });
    const fresh = await signIn(t.slug, admin.email);
    expect(await viewerOf(fresh)).toMatchObject({ role: 'SUPPORT' });
    // The same role again changes nothing, records nothing and ends no session.
    const unchanged = await state(t.id);
    ok(await s.gql(CHANGE_ROLE, { input: { memberId: admin.id, role: 'SUPPORT' } }, as(owner.cookie)));
    expect(await state(t.id)).toEqual(unchanged);
  });

  it('an ADMIN manages members below OWNER only: granting OWNER is a ValidationError, touching an owner FORBIDDEN', async () => {
    const t = await team(['OWNER', 'OWNER', 'ADMIN', 'SUPPORT']);
    const [owner, , admin, support] = t.members as (typeof t.members)[0][];
    const adminToken = ok(await s.gql(CREATE_TOKEN, { input: { name: 'admin', role: 'ADMIN' } }, { token: t.token })).createApiToken.token as string;
    for (const who of [as(admin!.cookie), { token: adminToken }]) {
      const before = await state(t.id);
      const grant = ok(await s.gql(CHANGE_ROLE, { input: { memberId: support!.id, role: 'OWNER' } }, who)).changeMemberRole;
      expect(grant).toMatchObject({ __typename: 'ValidationError', fields: [{ path: 'role' }] });
      for (const [query, input] of [
        [CHANGE_ROLE, { memberId: owner!.id, role: 'ADMIN' }],
        [REMOVE, { memberId: owner!.id }],
        [RESET, { memberId: owner!.id, password: 'another good password' }],
      ] as const) {
        const r = await s.gql(query, { input }, who);
        expect(r.errors?.[0]?.extensions?.code, JSON.stringify(r)).toBe('FORBIDDEN');
      }
      expect(await state(t.id)).toEqual(before);
    }
    // Below OWNER, an ADMIN may: promote to ADMIN, demote, reset, remove.
    expect(ok(await s.gql(CHANGE_ROLE, { input: { memberId: support!.id, role: 'ADMIN' } }, as(admin!.cookie))).changeMemberRole.role).toBe('ADMIN');
    expect(ok(await s.gql(CHANGE_ROLE, { input: { memberId: support!.id, role: 'READ_ONLY' } }, { token: adminToken })).changeMemberRole.role).toBe('READ_ONLY');
    expect(ok(await s.gql(RESET, { input: { memberId: support!.id, password: 'another good password' } }, as(admin!.cookie))).resetMemberPassword.__typename).toBe('Member');
    expect(ok(await s.gql(REMOVE, { input: { memberId: support!.id } }, as(admin!.cookie))).removeMember).toEqual({ __typename: 'RemoveMemberPayload', deletedId: support!.id });
    // An OWNER may grant OWNER and change another owner.
    expect(ok(await s.gql(CHANGE_ROLE, { input: { memberId: admin!.id, role: 'OWNER' } }, as(owner!.cookie))).changeMemberRole.role).toBe('OWNER');
    expect(ok(await s.gql(CHANGE_ROLE, { input: { memberId: admin!.id, role: 'ADMIN' } }, as(owner!.cookie))).changeMemberRole.role).toBe('ADMIN');
  });

  it('unknown, foreign or malformed member ids: NotFoundError / ValidationError, nothing written', async () => {
    const t = await team(['OWNER']);
    const foreign = await team(['ADMIN']);
    const [owner] = t.members;
    const ids = { unknown: encodeGlobalID('Member', '00000000-0000-4000-8000-000000000000'), foreign: foreign.members[0]!.id };
    const before = [await state(t.id), await state(foreign.id)];
    for (const [query, extra] of [[CHANGE_ROLE, { role: 'READ_ONLY' }], [REMOVE, {}], [RESET, { password: 'another good password' }]] as const) {
      for (const memberId of Object.values(ids)) {
        const r = ok(await s.gql(query, { input: { memberId, ...extra } }, as(owner!.cookie)));
        expect(Object.values(r)[0], `${query} ${memberId}`).toMatchObject({ __typename: 'NotFoundError' });
      }
      for (const memberId of ['nope', encodeGlobalID('License', '00000000-0000-4000-8000-000000000000')]) {
        const r = ok(await s.gql(query, { input: { memberId, ...extra } }, as(owner!.cookie)));
        expect(Object.values(r)[0]).toMatchObject({ __typename: 'ValidationError', fields: [{ path: 'memberId' }] });
      }
    }
    const bad = ok(await s.gql(RESET, { input: { memberId: ids.foreign, password: 'short' } }, as(owner!.cookie))).resetMemberPassword;
    expect(bad).toMatchObject({ __typename: 'ValidationError', fields: [{ path: 'password' }] });
    expect([await state(t.id), await state(foreign.id)]).toEqual(before);
  });

  it("the tenant's last owner can be neither demoted nor removed, by anyone, themselves included", async () => {
    const t = await team(['OWNER', 'OWNER']);
    const [a, b] = t.members as [(typeof t.members)[0], (typeof t.members)[0]];
    // With two owners, one may step down (keeping the session they did it with).
    expect(ok(await s.gql(CHANGE_ROLE, { input: { memberId: a.id, role: 'ADMIN' } }, as(a.cookie))).changeMemberRole.role).toBe('ADMIN');
    expect(await viewerOf(a.cookie)).toMatchObject({ role: 'ADMIN' });
    const before = await state(t.id);
    for (const who of [as(b.cookie), { token: t.token }]) {
      const demote = ok(await s.gql(CHANGE_ROLE, { input: { memberId: b.id, role: 'ADMIN' } }, who)).changeMemberRole;
      expect(demote).toMatchObject({ __typename: 'ConflictError', message: expect.stringMatching(/last owner/) });
      const remove = ok(await s.gql(REMOVE, { input: { memberId: b.id } }, who)).removeMember;
      expect(remove).toMatchObject({ __typename: 'ConflictError', message: expect.stringMatching(/last owner/) });
    }
    expect(await state(t.id)).toEqual(before);
    // A member may leave (their sessions go with them).
    expect(ok(await s.gql(REMOVE, { input: { memberId: a.id } }, as(a.cookie))).removeMember.__typename).toBe('RemoveMemberPayload');
    expect(await viewerOf(a.cookie)).toBeNull();
    expect(await s.db.prisma.session.count({ where: { userId: a.uuid } })).toBe(0);
    const [removed] = (await events(t.id)).filter((e) => e.type === 'member.removed');
    expect(removed).toMatchObject({ subjectId: a.uuid, actorId: a.uuid, payload: { email: a.email, role: 'ADMIN' } });
    const again = await s.gql(SIGN_IN, { input: { tenant: t.slug, email: a.email, password } });
    expect(ok(again).signIn.__typename).toBe('ValidationError');
  });

  it('concurrent demotions and removals of the last two owners leave one owner', async () => {
    for (let round = 0; round < 6; round++) {
      const t = await team(['OWNER', 'OWNER']);
      const [a, b] = t.members as [(typeof t.members)[0], (typeof t.members)[0]];
      // Each owner acts on the other (and, by token, on both) at once, by demotion or removal.
      const requests =
        round % 2
          ? [s.gql(CHANGE_ROLE, { input: { memberId: b.id, role: 'ADMIN' } }, as(a.cookie)), s.gql(REMOVE, { input: { memberId: a.id } }, { token: t.token })]
          : [s.gql(CHANGE_ROLE, { input: { memberId: a.id, role: 'ADMIN' } }, { token: t.token }), s.gql(CHANGE_ROLE, { input: { memberId: b.id, role: 'READ_ONLY' } }, { token: t.token })];
      const answers = (await Promise.all(requests)).map((r) => Object.values(ok(r))[0] as { __typename: string });
      expect(answers.map((x) => x.__typename).filter((x) => x === 'ConflictError'), `round ${round}: ${JSON.stringify(answers)}`).toHaveLength(1);
      expect(await s.db.prisma.user.count({ where: { tenantId: t.id, role: 'OWNER' } }), `round ${round}`).toBe(1);
    }
  });

  it('an admin-set password: the old one stops working, all the member\'s sessions end; one\'s own needs changePassword', async () => {
    const t = await team(['OWNER', 'SUPPORT']);
    const [owner, support] = t.members as [(typeof t.members)[0], (typeof t.members)[0]];
    const r = ok(await s.gql(RESET, { input: { memberId: support.id, password: 'a brand new password' } }, as(owner.cookie)));
    expect(r.resetMemberPassword).toMatchObject({ __typename: 'Member', id: support.id });
    expect(await viewerOf(support.cookie)).toBeNull();
    expect(ok(await s.gql(SIGN_IN, { input: { tenant: t.slug, email: support.email, password } })).signIn.__typename).toBe('ValidationError');
    await signIn(t.slug, support.email, 'a brand new password');
    const reset = (await events(t.id)).filter((e) => e.type === 'member.password_reset');
    expect(reset.map((e) => [e.subjectId, e.actorId, e.payload])).toEqual([[support.uuid, owner.uuid, { email: support.email }]]);
    expect(JSON.stringify(await events(t.id), (_k, v) => (typeof v === 'bigint' ? String(v) : v))).not.toContain('a brand new password');
    // Not for one's own password: that needs the current one.
    const before = await state(t.id);
    const own = ok(await s.gql(RESET, { input: { memberId: owner.id, password: 'a brand new password' } }, as(owner.cookie))).resetMemberPassword;
    expect(own).toMatchObject({ __typename: 'ValidationError', fields: [{ path: 'memberId' }] });
    expect(await state(t.id)).toEqual(before);
  });

  it('changePassword: needs the current password; keeps this session, ends the others; sessions only', async () => {
    const t = await team(['READ_ONLY']);
    const [member] = t.members as [(typeof t.members)[0]];
    const other = await signIn(t.slug, member.email);
    const before = await state(t.id);
    for (const input of [
      { currentPassword: 'wrong password!', newPassword: 'a brand new password' },
      { currentPassword: password, newPassword: 'short' },
      { currentPassword: password, newPassword: password },
    ]) {
      const r = ok(await s.gql(CHANGE_PASSWORD, { input }, as(member.cookie))).changePassword;
      expect(r.__typename, JSON.stringify(input)).toBe('ValidationError');
    }
    const wrong = ok(await s.gql(CHANGE_PASSWORD, { input: { currentPassword: 'wrong password!', newPassword: 'a brand new password' } }, as(member.cookie)));
    expect(wrong.changePassword.fields).toEqual([{ path: 'currentPassword', message: 'is incorrect' }]);
    expect(await state(t.id)).toEqual(before);
    // An API token or no credentials have no password to change.
    const viaToken = await s.gql(CHANGE_PASSWORD, { input: { currentPassword: password, newPassword: 'a brand new password' } }, { token: t.token });
    expect(viaToken.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const anonymous = await s.gql(CHANGE_PASSWORD, { input: { currentPassword: password, newPassword: 'a brand new password' } });
    expect(anonymous.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');

    const done = ok(await s.gql(CHANGE_PASSWORD, { input: { currentPassword: password, newPassword: 'a brand new password' } }, as(member.cookie)));
    expect(done.changePassword).toEqual({ __typename: 'ChangePasswordPayload', memberId: member.uuid });
    expect(await viewerOf(member.cookie)).toMatchObject({ role: 'READ_ONLY' });
    expect(await viewerOf(other)).toBeNull();
    expect(ok(await s.gql(SIGN_IN, { input: { tenant: t.slug, email: member.email, password } })).signIn.__typename).toBe('ValidationError');
    await signIn(t.slug, member.email, 'a brand new password');
    const changed = (await events(t.id)).filter((e) => e.type === 'member.password_changed');
    expect(changed.map((e) => [e.subjectId, e.actorId, e.payload])).toEqual([[member.uuid, member.uuid, { email: member.email }]]);
  });

  it('a session ends at its maximum age from sign-in, however recently used; sliding never passes it', async () => {
    const t = await team(['ADMIN']);
    const [member] = t.members as [(typeof t.members)[0]];
    const where = { tokenHash: hashSecret(decodeURIComponent(member.cookie.split('=')[1]!)) };
    const day = 24 * 3600_000;
    // Signed in six days and 23 hours ago, used a while ago: it slides, but only to the seventh day.
    const createdAt = new Date(Date.now() - 7 * day + 3600_000);
    await s.db.prisma.session.update({ where, data: { createdAt, lastUsedAt: new Date(Date.now() - 5 * 60_000) } });
    expect(await viewerOf(member.cookie)).toMatchObject({ role: 'ADMIN' });
    const slid = await s.db.prisma.session.findUniqueOrThrow({ where });
    expect(slid.expiresAt.getTime()).toBe(createdAt.getTime() + 7 * day);
    // Past seven days it is over, whatever its expiry says.
    await s.db.prisma.session.update({ where, data: { createdAt: new Date(Date.now() - 7 * day - 1000), expiresAt: new Date(Date.now() + 3600_000) } });
    expect(await viewerOf(member.cookie)).toBeNull();
    const q = await s.gql(`{ products { id } }`, {}, as(member.cookie));
    expect(q.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });

  describe("a member's API tokens", () => {
    const TOKENS = `{ apiTokens { id name role revokedAt createdBy { id email } } }`;
    const mint = async (who: { token?: string; headers?: Record<string, string> }, name: string, role: Role) => {
      const r = ok(await s.gql(CREATE_TOKEN, { input: { name, role } }, who)).createApiToken;
      expect(r.__typename, `${name}: ${JSON.stringify(r)}`).toBe('CreateApiTokenPayload');
      return { secret: r.token as string, id: r.apiToken.id as string, uuid: decodeGlobalID(r.apiToken.id).id, name };
    };
    /** Whether the secret still authenticates, by a query and by a mutation. */
    const works = async (secret: string) => {
      const viewer = ok(await s.gql(VIEWER, {}, { token: secret })).viewer;
      const m = await s.gql(`mutation { createCustomer(input: { name: "probe" }) { __typename } }`, {}, { token: secret });
      expect(viewer === null, 'viewer and mutation agree').toBe(m.errors?.[0]?.extensions?.code === 'UNAUTHENTICATED');
      return viewer !== null;
    };
    /** The api_token.revoked events since the `since`-th event of the tenant, by token name. */
    const revocations = async (tenantId: string, since: number) =>
      (await events(tenantId))
        .slice(since)
        .filter((e) => e.type === 'api_token.revoked')
        .map((e) => [e.subjectId, e.actorId, e.payload] as const)
        .sort((x, y) => String((x[2] as { name?: string }).name).localeCompare(String((y[2] as { name?: string }).name)));

    it('the console lists who created each token: the member, also for tokens their tokens made; nobody for the operator\'s', async () => {
      const t = await team(['OWNER', 'ADMIN']);
      const [owner, admin] = t.members as [(typeof t.members)[0], (typeof t.members)[0]];
      const a = await mint(as(admin.cookie), 'admin console', 'ADMIN');
      await mint({ token: a.secret }, 'made by admin console', 'SUPPORT');
      await mint(as(owner.cookie), 'owner console', 'READ_ONLY');
      const list = ok(await s.gql(TOKENS, {}, { token: t.token })).apiTokens as { id: string; name: string; createdBy: { id: string; email: string } | null }[];
      const by = Object.fromEntries(list.map((x) => [x.name, x.createdBy]));
      expect(by).toEqual({
        'admin console': { id: admin.id, email: admin.email },
        'made by admin console': { id: admin.id, email: admin.email },
        'owner console': { id: owner.id, email: owner.email },
        'Initial owner token': null,
      });
    });

    it('removing a member revokes, with it, every token they created (through their tokens too): audited, refused from then on', async () => {
      const t = await team(['OWNER', 'ADMIN', 'SUPPORT']);
      const [owner, admin, support] = t.members as (typeof t.members)[0][];
      const a = await mint(as(admin!.cookie), 'admin ci', 'ADMIN');
      const r = await mint(as(admin!.cookie), 'admin reporting', 'READ_ONLY');
      const b = await mint({ token: a.secret }, 'minted by admin ci', 'SUPPORT');
      const gone = await mint(as(admin!.cookie), 'already revoked', 'READ_ONLY');
      ok(await s.gql(REVOKE_TOKEN, { id: gone.id }, { token: t.token }));
      const revokedAt = (await s.db.prisma.apiToken.findUniqueOrThrow({ where: { id: gone.uuid } })).revokedAt;
      const others = [await mint(as(owner!.cookie), 'owner ci', 'ADMIN'), await mint({ token: t.token }, 'operator ci', 'SUPPORT')];
      for (const x of [a, r, b, ...others]) expect(await works(x.secret), x.name).toBe(true);

      const since = (await events(t.id)).length;
      const removed = ok(await s.gql(REMOVE, { input: { memberId: admin!.id } }, as(owner!.cookie))).removeMember;
      expect(removed).toEqual({ __typename: 'RemoveMemberPayload', deletedId: admin!.id });
      for (const x of [a, r, b]) expect(await works(x.secret), x.name).toBe(false);
      for (const x of others) expect(await works(x.secret), x.name).toBe(true);
      expect((await s.db.prisma.apiToken.findUniqueOrThrow({ where: { id: gone.uuid } })).revokedAt).toEqual(revokedAt);
      const after = (await events(t.id)).slice(since).filter((e) => e.type !== 'customer.created');
      // One request, one transaction: the removal and the revocations.
      expect(new Set(after.map((e) => e.requestId)).size).toBe(1);
      expect(await revocations(t.id, since)).toEqual([
        [a.uuid, owner!.uuid, { name: 'admin ci', reason: 'member_removed' }],
        [r.uuid, owner!.uuid, { name: 'admin reporting', reason: 'member_removed' }],
        [b.uuid, owner!.uuid, { name: 'minted by admin ci', reason: 'member_removed' }],
      ]);
      expect(after.filter((e) => e.type === 'member.removed').map((e) => e.subjectId)).toEqual([admin!.uuid]);
      // Revoked is revoked: revoking again is a conflict, as after revokeApiToken.
      expect(ok(await s.gql(REVOKE_TOKEN, { id: a.id }, { token: t.token })).revokeApiToken.__typename).toBe('ConflictError');

      // A member without tokens: removed, nothing revoked.
      const none = (await events(t.id)).length;
      ok(await s.gql(REMOVE, { input: { memberId: support!.id } }, as(owner!.cookie)));
      expect(await revocations(t.id, none)).toEqual([]);
    });

    it('demoting a member revokes their tokens above the new role only; promoting or the same role revokes nothing', async () => {
      const t = await team(['OWNER', 'OWNER', 'ADMIN']);
      const [owner, second, admin] = t.members as (typeof t.members)[0][];
      const adminTokens = { ADMIN: await mint(as(admin!.cookie), 'a-admin', 'ADMIN'), SUPPORT: await mint(as(admin!.cookie), 'a-support', 'SUPPORT'), READ_ONLY: await mint(as(admin!.cookie), 'a-read', 'READ_ONLY') };
      const viaToken = await mint({ token: adminTokens.ADMIN.secret }, 'a-admin-child', 'ADMIN');
      let since = (await events(t.id)).length;
      ok(await s.gql(CHANGE_ROLE, { input: { memberId: admin!.id, role: 'SUPPORT' } }, as(owner!.cookie)));
      expect(await works(adminTokens.ADMIN.secret)).toBe(false);
      expect(await works(viaToken.secret)).toBe(false);
      expect(await works(adminTokens.SUPPORT.secret)).toBe(true);
      expect(await works(adminTokens.READ_ONLY.secret)).toBe(true);
      expect(await revocations(t.id, since)).toEqual([
        [adminTokens.ADMIN.uuid, owner!.uuid, { name: 'a-admin', reason: 'member_demoted' }],
        [viaToken.uuid, owner!.uuid, { name: 'a-admin-child', reason: 'member_demoted' }],
      ]);
      // Up again, and to the same role: nothing revoked.
      since = (await events(t.id)).length;
      ok(await s.gql(CHANGE_ROLE, { input: { memberId: admin!.id, role: 'ADMIN' } }, as(owner!.cookie)));
      ok(await s.gql(CHANGE_ROLE, { input: { memberId: admin!.id, role: 'ADMIN' } }, as(owner!.cookie)));
      expect(await revocations(t.id, since)).toEqual([]);
      expect(await works(adminTokens.SUPPORT.secret)).toBe(true);

      // An owner stepping down to ADMIN loses their OWNER tokens, keeps their ADMIN ones (and the session they did it with).
      const ownerTokens = [await mint(as(second!.cookie), 'o-owner', 'OWNER'), await mint(as(second!.cookie), 'o-admin', 'ADMIN')];
      since = (await events(t.id)).length;
      ok(await s.gql(CHANGE_ROLE, { input: { memberId: second!.id, role: 'ADMIN' } }, as(second!.cookie)));
      expect(await works(ownerTokens[0]!.secret)).toBe(false);
      expect(await works(ownerTokens[1]!.secret)).toBe(true);
      expect(await revocations(t.id, since)).toEqual([[ownerTokens[0]!.uuid, second!.uuid, { name: 'o-owner', reason: 'member_demoted' }]]);
      expect(await viewerOf(second!.cookie)).toMatchObject({ role: 'ADMIN' });
    });

    it("a refused removal or demotion revokes nothing", async () => {
      const t = await team(['OWNER']);
      const [owner] = t.members as [(typeof t.members)[0]];
      const mine = await mint(as(owner.cookie), 'last owner', 'OWNER');
      const before = await state(t.id);
      expect(ok(await s.gql(REMOVE, { input: { memberId: owner.id } }, as(owner.cookie))).removeMember.__typename).toBe('ConflictError');
      expect(ok(await s.gql(CHANGE_ROLE, { input: { memberId: owner.id, role: 'ADMIN' } }, as(owner.cookie))).changeMemberRole.__typename).toBe('ConflictError');
      expect(await state(t.id)).toEqual(before);
      expect(await works(mine.secret)).toBe(true);
    });

    it('createApiToken never gives more than the creator has now: not above their role, nothing once they are gone', async () => {
      const t = await team(['OWNER', 'ADMIN']);
      const [, admin] = t.members as [(typeof t.members)[0], (typeof t.members)[0]];
      const a = await mint(as(admin.cookie), 'admin a', 'ADMIN');
      const count = await s.db.prisma.apiToken.count();
      // A session or token of an ADMIN makes no OWNER token.
      for (const who of [as(admin.cookie), { token: a.secret }]) {
        const r = ok(await s.gql(CREATE_TOKEN, { input: { name: 'up', role: 'OWNER' } }, who)).createApiToken;
        expect(r).toMatchObject({ __typename: 'ValidationError', fields: [{ path: 'role' }] });
      }
      // A token outlasting its creator's role or membership (written before tokens went with their member):
      // it mints nothing above what the member has now, and nothing at all once the member is gone.
      await s.db.prisma.user.update({ where: { id: admin.uuid }, data: { role: 'SUPPORT' } });
      const denied = await s.gql(CREATE_TOKEN, { input: { name: 'stale', role: 'READ_ONLY' } }, { token: a.secret });
      expect(denied.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
      await s.db.prisma.user.delete({ where: { id: admin.uuid } });
      const orphan = await s.gql(CREATE_TOKEN, { input: { name: 'orphan', role: 'READ_ONLY' } }, { token: a.secret });
      expect(orphan.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
      expect(await s.db.prisma.apiToken.count()).toBe(count);
    });

    it('a token created while its member is removed or demoted does not survive it', async () => {
      for (let round = 0; round < 8; round++) {
        const t = await team(['OWNER', 'ADMIN']);
        const [owner, admin] = t.members as [(typeof t.members)[0], (typeof t.members)[0]];
        const a = await mint(as(admin.cookie), `r${round}`, 'ADMIN');
        const demote = round % 2 === 1;
        const change = demote
          ? s.gql(CHANGE_ROLE, { input: { memberId: admin.id, role: 'READ_ONLY' } }, as(owner.cookie))
          : s.gql(REMOVE, { input: { memberId: admin.id } }, as(owner.cookie));
        const creations = Array.from({ length: 6 }, (_, i) => s.gql(CREATE_TOKEN, { input: { name: `race ${i}`, role: i % 2 ? 'ADMIN' : 'SUPPORT' } }, i % 3 ? { token: a.secret } : as(admin.cookie)));
        const [changed, ...made] = await Promise.all([change, ...creations]);
        expect(Object.values(ok(changed))[0], `round ${round}`).toMatchObject({ __typename: demote ? 'Member' : 'RemoveMemberPayload' });
        for (const m of made) {
          if (m.errors) {
            expect(['FORBIDDEN', 'UNAUTHENTICATED'], `round ${round}: ${JSON.stringify(m.errors)}`).toContain(m.errors[0]?.extensions?.code);
            continue;
          }
          const r = m.data.createApiToken;
          if (r.__typename !== 'CreateApiTokenPayload') {
            expect(r.__typename, `round ${round}: ${JSON.stringify(r)}`).toBe('ValidationError');
            continue;
          }
          // Made before the change took its turn: then revoked by it (a READ_ONLY member keeps nothing above).
          expect(await works(r.token), `round ${round} ${r.apiToken.name}`).toBe(false);
        }
        const live = await s.db.prisma.apiToken.count({ where: { tenantId: t.id, createdById: admin.uuid, revokedAt: null, role: { not: 'READ_ONLY' } } });
        expect(live, `round ${round}`).toBe(0);
      }
    });
  });
});
