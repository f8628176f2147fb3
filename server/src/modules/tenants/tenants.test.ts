import { decodeGlobalID } from '@pothos/plugin-relay';
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

  it('only an OWNER can add members', async () => {
    const admin = await token('ADMIN', 'admin for members');
    const r = await s.gql(CREATE_MEMBER, { input: { email: 'x@example.com', password, role: 'SUPPORT' } }, { token: admin.token });
    expect(r.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(await s.db.prisma.user.count({ where: { email: 'x@example.com' } })).toBe(0);
  });

  it('signs in with email + password: an HttpOnly session cookie that authenticates', async () => {
    const r = await s.gql(SIGN_IN, { input: { tenant: tenant.slug, email: 'Support@example.com', password } });
    expect(ok(r).signIn.__typename).toBe('SignInSuccess');
    const cookie = r.response.headers.get('set-cookie') ?? '';
    expect(cookie).toMatch(/^tessera_session=tss_/);
    expect(cookie).toContain('HttpOnly');
    expect(cookie).toContain('SameSite=Lax');
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
