import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ok, startTestServer, type TestServer } from '../../../test/harness.ts';
import { execute, listen, sleep, subscribe, wsClient, type WsClient } from '../../../test/ws.ts';
import { issue, license } from '../activation/fixtures.ts';
import { generateKey } from '../licenses/keys.ts';
import { giveBack } from './ratelimit.ts';

const ACTIVATE = `mutation($input: ActivateInput!) { activate(input: $input) { __typename ... on LicensingError { code message } ... on ActivateSuccess { reused } } }`;
const HEARTBEAT = `mutation($input: HeartbeatInput!) { heartbeat(input: $input) { __typename ... on LicensingError { code message } } }`;
const VALIDATE = `query($input: ValidateInput!) { validateLicense(input: $input) { valid code } }`;
const SIGN_IN = `mutation($input: SignInInput!) { signIn(input: $input) { __typename ... on SignInSuccess { memberId } ... on ValidationError { message } } }`;
const CREATE_MEMBER = `mutation($input: CreateMemberInput!) { createMember(input: $input) { __typename } }`;

const ip = () => `10.${Math.floor(Math.random() * 250)}.${Math.floor(Math.random() * 250)}.${Math.floor(Math.random() * 250)}`;
const from = (address: string) => ({ headers: { 'x-forwarded-for': `${address}` } });

describe('rate limits', () => {
  let s: TestServer;
  let token: string;
  let slug: string;
  let key: string;
  beforeAll(async () => {
    s = await startTestServer({
      env: {
        TESSERA_RATE_LIMIT_KEY_PER_MINUTE: '4',
        TESSERA_RATE_LIMIT_IP_PER_MINUTE: '12',
        TESSERA_RATE_LIMIT_UNKNOWN_KEYS_PER_MINUTE: '3',
        TESSERA_RATE_LIMIT_SIGNIN_ACCOUNT: '3',
        TESSERA_RATE_LIMIT_SIGNIN_IP: '5',
        TESSERA_TRUST_PROXY: '1',
        TESSERA_RATE_LIMIT_ADMIN_PER_MINUTE: '200',
      },
    });
    ({ token, slug } = await s.tenant());
    ({ key } = await issue(s, token, { maxActivations: 100 }));
  });
  afterAll(() => s.close());

  async function activate(k: string, address: string) {
    const r = await s.gql(ACTIVATE, { input: { key: k, fingerprint: `fp-${randomUUID()}` } }, from(address));
    return { ...ok(r).activate, retryAfter: r.response.headers.get('retry-after') };
  }

  it('limits attempts per license key, from any address, with a retry-after', async () => {
    const codes = [];
    for (let i = 0; i < 4; i++) codes.push((await activate(key, ip())).__typename);
    expect(codes).toEqual(['ActivateSuccess', 'ActivateSuccess', 'ActivateSuccess', 'ActivateSuccess']);
    const limited = await activate(key, ip());
    expect(limited).toMatchObject({ __typename: 'LicensingError', code: 'RATE_LIMITED' });
    expect(limited.message).toMatch(/retry after \d+ s/);
    expect(Number(limited.retryAfter)).toBeGreaterThan(0);
    // Every client operation on that key counts: heartbeat and validation are held too.
    expect(ok(await s.gql(HEARTBEAT, { input: { key, fingerprint: 'x' } }, from(ip()))).heartbeat.code).toBe('RATE_LIMITED');
    expect(ok(await s.gql(VALIDATE, { input: { key } }, from(ip()))).validateLicense).toEqual({ valid: false, code: 'RATE_LIMITED' });
  });

  it('answers an unknown key exactly like a known one: same limit, same answers', async () => {
    const { key: known } = await issue(s, token, { maxActivations: 100 });
    const unknown = generateKey('LIC');
    const shape = async (k: string) => {
      const out = [];
      for (let i = 0; i < 6; i++) {
        // Validation without a fingerprint reveals nothing either way but the code.
        const r = await s.gql(HEARTBEAT, { input: { key: k, fingerprint: 'never-activated' } }, from(ip()));
        out.push(ok(r).heartbeat.code === 'RATE_LIMITED' ? 'RATE_LIMITED' : 'answered');
      }
      return out;
    };
    const a = await shape(known);
    const b = await shape(unknown);
    expect(a).toEqual(['answered', 'answered', 'answered', 'answered', 'RATE_LIMITED', 'RATE_LIMITED']);
    expect(b).toEqual(a);
    const m1 = ok(await s.gql(HEARTBEAT, { input: { key: known, fingerprint: 'x' } }, from(ip()))).heartbeat.message;
    const m2 = ok(await s.gql(HEARTBEAT, { input: { key: unknown, fingerprint: 'x' } }, from(ip()))).heartbeat.message;
    expect(m1.replace(/\d+/g, 'N')).toBe(m2.replace(/\d+/g, 'N'));
  });

  it('counts every spelling key parsing accepts (look-alikes, case) against one key', async () => {
    // A well-formed key with at least five spellings that differ once upper-cased (O/0, I/L/1 after the first dash).
    const LOOKALIKES: Record<string, string[]> = { '0': ['0', 'O'], '1': ['1', 'I', 'L'] };
    let key = generateKey('LIC');
    const count = (k: string) => [...k.slice(4)].reduce((n, c) => n * (LOOKALIKES[c]?.length ?? 1), 1);
    while (count(key) < 5) key = generateKey('LIC');
    const spellings = new Set<string>([key]);
    for (let i = 4; i < key.length && spellings.size < 6; i++) {
      for (const spelling of [...spellings]) {
        for (const alt of LOOKALIKES[spelling[i]!] ?? []) spellings.add(spelling.slice(0, i) + alt + spelling.slice(i + 1));
      }
    }
    const variants = [...spellings].slice(0, 5).map((v, i) => (i % 2 ? v.toLowerCase() : v));
    const codes = [];
    for (const v of variants) codes.push(ok(await s.gql(VALIDATE, { input: { key: v } }, from(ip()))).validateLicense.code);
    expect(codes, variants.join(' ')).toEqual(['LICENSE_NOT_FOUND', 'LICENSE_NOT_FOUND', 'LICENSE_NOT_FOUND', 'LICENSE_NOT_FOUND', 'RATE_LIMITED']);
  });

  it('stops an address that probes unknown keys, whatever key it tries next', async () => {
    const prober = ip();
    for (let i = 0; i < 3; i++) expect((await activate(generateKey('LIC'), prober)).code).toBe('LICENSE_NOT_FOUND');
    const next = await activate(generateKey('LIC'), prober);
    expect(next.code).toBe('RATE_LIMITED');
    const { key: fresh } = await issue(s, token, { maxActivations: 100 });
    expect((await activate(fresh, prober)).code).toBe('RATE_LIMITED');
    // Another address is not affected.
    expect((await activate(fresh, ip())).__typename).toBe('ActivateSuccess');
  });

  it('limits client operations per address', async () => {
    const busy = ip();
    const answers = [];
    for (let i = 0; i < 14; i++) {
      const { key: k } = i % 4 === 0 ? await issue(s, token, { maxActivations: 100 }) : { key };
      answers.push(ok(await s.gql(VALIDATE, { input: { key: i % 4 === 0 ? k : generateKey('LIC').replace(/^LIC/, 'XYZ') } }, from(busy))).validateLicense.code);
    }
    expect(answers.slice(12)).toEqual(['RATE_LIMITED', 'RATE_LIMITED']);
  });

  it('limits failed sign-ins per account, existing or not, whether the password is then right or not', async () => {
    ok(await s.gql(CREATE_MEMBER, { input: { email: 'ann@example.com', password: 'correct horse battery', role: 'ADMIN' } }, { token }));
    const signIn = (email: string, password: string, address = ip()) =>
      s.gql(SIGN_IN, { input: { tenant: slug, email, password } }, from(address));
    for (const email of ['ann@example.com', 'nobody@example.com']) {
      for (let i = 0; i < 3; i++) expect(ok(await signIn(email, 'wrong password!')).signIn.__typename).toBe('ValidationError');
      const blocked = await signIn(email, 'correct horse battery');
      expect(blocked.errors?.[0]?.extensions?.code).toBe('RATE_LIMITED');
      expect(blocked.errors?.[0]?.message).toMatch(/retry after \d+ s/);
      expect(Number(blocked.response.headers.get('retry-after'))).toBeGreaterThan(0);
    }
  });

  it('a successful sign-in clears the account counter; failures per address are limited too', async () => {
    ok(await s.gql(CREATE_MEMBER, { input: { email: 'bob@example.com', password: 'correct horse battery', role: 'ADMIN' } }, { token }));
    const signIn = (email: string, password: string, address = ip()) =>
      s.gql(SIGN_IN, { input: { tenant: slug, email, password } }, from(address));
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 2; i++) expect(ok(await signIn('bob@example.com', 'wrong password!')).signIn.__typename).toBe('ValidationError');
      expect(ok(await signIn('bob@example.com', 'correct horse battery')).signIn.__typename).toBe('SignInSuccess');
    }
    const sprayer = ip();
    for (let i = 0; i < 5; i++) expect(ok(await signIn(`user${i}@example.com`, 'wrong password!', sprayer)).signIn.__typename).toBe('ValidationError');
    expect((await signIn('bob@example.com', 'correct horse battery', sprayer)).errors?.[0]?.extensions?.code).toBe('RATE_LIMITED');
  });
  it('wrong current passwords in changePassword count as failed sign-ins of the account, from the same budget', async () => {
    ok(await s.gql(CREATE_MEMBER, { input: { email: 'cal@example.com', password: 'correct horse battery', role: 'READ_ONLY' } }, { token }));
    const signedIn = await s.gql(SIGN_IN, { input: { tenant: slug, email: 'cal@example.com', password: 'correct horse battery' } }, from(ip()));
    const cookie = signedIn.response.headers.get('set-cookie')!.split(';')[0]!;
    const change = (currentPassword: string) =>
      s.gql(
        `mutation($input: ChangePasswordInput!) { changePassword(input: $input) { __typename ... on ValidationError { fields { path } } } }`,
        { input: { currentPassword, newPassword: 'another good password' } },
        { headers: { cookie, 'x-forwarded-for': ip() } },
      );
    // A refused new password is no wrong guess: it costs nothing.
    for (let i = 0; i < 4; i++) {
      const r = await s.gql(`mutation { changePassword(input: { currentPassword: "correct horse battery", newPassword: "short" }) { __typename } }`, {}, { headers: { cookie } });
      expect(ok(r).changePassword.__typename).toBe('ValidationError');
    }
    for (let i = 0; i < 2; i++) expect(ok(await change('wrong password!')).changePassword).toEqual({ __typename: 'ValidationError', fields: [{ path: 'currentPassword' }] });
    expect(ok(await s.gql(SIGN_IN, { input: { tenant: slug, email: 'cal@example.com', password: 'wrong password!' } }, from(ip()))).signIn.__typename).toBe('ValidationError');
    const blocked = await change('correct horse battery');
    expect(blocked.errors?.[0]?.extensions?.code).toBe('RATE_LIMITED');
    expect(Number(blocked.response.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((await s.gql(SIGN_IN, { input: { tenant: slug, email: 'cal@example.com', password: 'correct horse battery' } }, from(ip()))).errors?.[0]?.extensions?.code).toBe('RATE_LIMITED');
    const user = await s.db.prisma.user.findFirstOrThrow({ where: { email: 'cal@example.com' } });
    expect(await s.db.prisma.auditEvent.count({ where: { subjectId: user.id, type: 'member.password_changed' } })).toBe(0);
  });
});

describe('rate limits under concurrency', () => {
  let s: TestServer;
  let token: string;
  let slug: string;
  let url: string;
  const sockets: WsClient[] = [];
  beforeAll(async () => {
    s = await startTestServer({
      env: {
        TESSERA_RATE_LIMIT_KEY_PER_MINUTE: '1000',
        TESSERA_RATE_LIMIT_IP_PER_MINUTE: '1000',
        TESSERA_RATE_LIMIT_UNKNOWN_KEYS_PER_MINUTE: '3',
        TESSERA_RATE_LIMIT_SIGNIN_ACCOUNT: '3',
        TESSERA_RATE_LIMIT_SIGNIN_IP: '5',
        TESSERA_TRUST_PROXY: '1',
        TESSERA_RATE_LIMIT_ADMIN_PER_MINUTE: '10000',
      },
    });
    ({ token, slug } = await s.tenant());
    url = await listen(s.app);
    ok(await s.gql(CREATE_MEMBER, { input: { email: 'cy@example.com', password: 'correct horse battery', role: 'ADMIN' } }, { token }));
  });
  afterAll(async () => {
    await Promise.all(sockets.map((c) => c.dispose()));
    await s.close();
  });

  const signIn = (email: string, password: string, address: string) => s.gql(SIGN_IN, { input: { tenant: slug, email, password } }, from(address));
  const outcome = (r: Awaited<ReturnType<typeof signIn>>) => r.errors?.[0]?.extensions?.code ?? r.data.signIn.__typename;
  const validate = (key: string, address: string) => s.gql(VALIDATE, { input: { key } }, from(address)).then((r) => ok(r).validateLicense.code ?? 'VALID');
  const tally = (codes: string[]) => codes.reduce<Record<string, number>>((n, c) => ({ ...n, [c]: (n[c] ?? 0) + 1 }), {});

  it('checks no more concurrent wrong passwords for one account than its limit', async () => {
    const results = await Promise.all(Array.from({ length: 30 }, () => signIn('cy@example.com', 'wrong password!', ip())));
    expect(tally(results.map(outcome))).toEqual({ ValidationError: 3, RATE_LIMITED: 27 });
    expect(outcome(await signIn('cy@example.com', 'correct horse battery', ip()))).toBe('RATE_LIMITED');
  });

  it('checks no more concurrent wrong passwords from one address than its limit', async () => {
    const sprayer = ip();
    const results = await Promise.all(Array.from({ length: 30 }, (_, i) => signIn(`spray${i}@example.com`, 'wrong password!', sprayer)));
    expect(tally(results.map(outcome))).toEqual({ ValidationError: 5, RATE_LIMITED: 25 });
  });

  it('gives successful sign-ins their points back', async () => {
    ok(await s.gql(CREATE_MEMBER, { input: { email: 'dee@example.com', password: 'correct horse battery', role: 'ADMIN' } }, { token }));
    const office = ip();
    for (let i = 0; i < 8; i++) expect(outcome(await signIn('dee@example.com', 'correct horse battery', office))).toBe('SignInSuccess');
    const failures = [];
    for (let i = 0; i < 6; i++) failures.push(outcome(await signIn(`typo${i}@example.com`, 'wrong password!', office)));
    expect(failures).toEqual(['ValidationError', 'ValidationError', 'ValidationError', 'ValidationError', 'ValidationError', 'RATE_LIMITED']);
  });

  it('looks up no more unknown keys per address than its budget, with aliases or concurrent requests', async () => {
    const fields = Array.from({ length: 15 }, (_, i) => `v${i}: validateLicense(input: { key: "${generateKey('LIC')}" }) { valid code }`);
    const aliased = ok(await s.gql(`query { ${fields.join(' ')} }`, {}, from(ip())));
    expect(tally(Object.values(aliased as Record<string, { code: string }>).map((v) => v.code))).toEqual({ LICENSE_NOT_FOUND: 3, RATE_LIMITED: 12 });
    const prober = ip();
    const concurrent = await Promise.all(Array.from({ length: 15 }, () => validate(generateKey('LIC'), prober)));
    expect(tally(concurrent)).toEqual({ LICENSE_NOT_FOUND: 3, RATE_LIMITED: 12 });
  });

  it('lets a burst of known keys from one address through, more at once than its unknown-key budget', async () => {
    const { key } = await issue(s, token, { maxActivations: 100 });
    const site = ip();
    expect(tally(await Promise.all(Array.from({ length: 40 }, () => validate(key, site))))).toEqual({ VALID: 40 });
    // The budget is whole afterwards: every place was given back.
    const codes = [];
    for (let i = 0; i < 4; i++) codes.push(await validate(generateKey('LIC'), site));
    expect(codes).toEqual(['LICENSE_NOT_FOUND', 'LICENSE_NOT_FOUND', 'LICENSE_NOT_FOUND', 'RATE_LIMITED']);
  });

  it('gives a known key its unknown-key point back', async () => {
    const { key } = await issue(s, token, { maxActivations: 100 });
    const site = ip();
    for (let i = 0; i < 6; i++) expect(await validate(key, site)).toBe('VALID');
    const codes = [];
    for (let i = 0; i < 4; i++) codes.push(await validate(generateKey('LIC'), site));
    expect(codes).toEqual(['LICENSE_NOT_FOUND', 'LICENSE_NOT_FOUND', 'LICENSE_NOT_FOUND', 'RATE_LIMITED']);
  });

  it('applies the per-address limits to client operations over graphql-ws, by the upgrade request\'s address', async () => {
    const socket = (address: string) => {
      const c = wsClient(url, token, { 'x-forwarded-for': address });
      sockets.push(c);
      return c.client;
    };
    const { key } = await issue(s, token, { maxActivations: 100 });
    const overWs = async (client: WsClient['client'], k: string) => {
      const r = await execute(client, VALIDATE, { input: { key: k } });
      if (r.errors) throw new Error(JSON.stringify(r.errors));
      return r.data.validateLicense.code ?? 'VALID';
    };
    // An address that used up its unknown-key budget over HTTP is held over the socket too.
    const prober = ip();
    for (let i = 0; i < 3; i++) expect(await validate(generateKey('LIC'), prober)).toBe('LICENSE_NOT_FOUND');
    expect(await overWs(socket(prober), key)).toBe('RATE_LIMITED');
    // Over the socket alone, and other addresses are not affected.
    const other = socket(ip());
    const codes = [];
    for (let i = 0; i < 4; i++) codes.push(await overWs(other, generateKey('LIC')));
    expect(codes).toEqual(['LICENSE_NOT_FOUND', 'LICENSE_NOT_FOUND', 'LICENSE_NOT_FOUND', 'RATE_LIMITED']);
    expect(await overWs(socket(ip()), key)).toBe('VALID');
  });

  it('counts IPv6 addresses per /64, IPv4 (also mapped into IPv6) per address', async () => {
    const probe = async (addresses: string[]) => {
      const codes = [];
      for (const a of addresses) codes.push(await validate(generateKey('LIC'), a));
      return codes;
    };
    expect(await probe(['2001:db8:a:b::1', '2001:db8:a:b::2', '2001:db8:a:b:ffff:ffff:ffff:ffff', '2001:0db8:000a:000b:0:0:0:9', '2001:db8:a:c::1'])).toEqual([
      'LICENSE_NOT_FOUND',
      'LICENSE_NOT_FOUND',
      'LICENSE_NOT_FOUND',
      'RATE_LIMITED',
      'LICENSE_NOT_FOUND',
    ]);
    expect(await probe(['::ffff:192.0.2.1', '::ffff:192.0.2.1', '::ffff:192.0.2.1', '192.0.2.1', '::ffff:192.0.2.2'])).toEqual([
      'LICENSE_NOT_FOUND',
      'LICENSE_NOT_FOUND',
      'LICENSE_NOT_FOUND',
      'RATE_LIMITED',
      'LICENSE_NOT_FOUND',
    ]);
  });
});

describe('client address when fewer proxies forwarded the request than are trusted', () => {
  let s: TestServer;
  let token: string;
  let base: string;
  let ws: WsClient | undefined;
  beforeAll(async () => {
    s = await startTestServer({ env: { TESSERA_RATE_LIMIT_UNKNOWN_KEYS_PER_MINUTE: '3', TESSERA_TRUST_PROXY: '2' } });
    ({ token } = await s.tenant());
    base = (await listen(s.app)).replace(/^ws/, 'http');
  });
  afterAll(async () => {
    await ws?.dispose();
    await s.close();
  });

  const validate = async (key: string, forwardedFor: string) => {
    const res = await fetch(base, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-forwarded-for': forwardedFor },
      body: JSON.stringify({ query: VALIDATE, variables: { input: { key } } }),
    });
    return ((await res.json()) as { data: { validateLicense: { code: string | null } } }).data.validateLicense.code ?? 'VALID';
  };

  it('counts by the socket address, not by a hop the client wrote', async () => {
    const codes = [];
    for (let i = 0; i < 4; i++) codes.push(await validate(generateKey('LIC'), `198.51.100.${i + 1}`));
    expect(codes).toEqual(['LICENSE_NOT_FOUND', 'LICENSE_NOT_FOUND', 'LICENSE_NOT_FOUND', 'RATE_LIMITED']);
    // Through both proxies, the address the outer one saw counts.
    expect(await validate(generateKey('LIC'), '198.51.100.50, 10.0.0.1')).toBe('LICENSE_NOT_FOUND');
    // A socket upgraded with one hop shares the socket address's budget.
    const { key } = await issue(s, token);
    ws = wsClient(base.replace(/^http/, 'ws'), token, { 'x-forwarded-for': '198.51.100.99' });
    const r = await execute(ws.client, VALIDATE, { input: { key } });
    expect(r.data.validateLicense.code).toBe('RATE_LIMITED');
  });
});

describe('admin rate limit', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer({ env: { TESSERA_RATE_LIMIT_ADMIN_PER_MINUTE: '5' } });
  });
  afterAll(() => s.close());

  it('gives each credential its own budget, then RATE_LIMITED with a retry-after', async () => {
    const { token } = await s.tenant();
    const { token: other } = await s.tenant();
    for (let i = 0; i < 5; i++) expect(ok(await s.gql('{ products { id } }', {}, { token })).products).toEqual([]);
    const r = await s.gql('{ products { id } }', {}, { token });
    expect(r.errors?.[0]?.extensions?.code).toBe('RATE_LIMITED');
    expect(r.errors?.[0]?.message).toMatch(/retry after \d+ s/);
    expect(Number(r.response.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(ok(await s.gql('{ products { id } }', {}, { token: other })).products).toEqual([]);
  });

  it('counts the audit export and the offline bundle routes, from the same budget', async () => {
    const { token } = await s.tenant();
    const auth = { headers: { authorization: `Bearer ${token}` } };
    for (let i = 0; i < 3; i++) expect((await s.fetch('/audit/export', auth)).status).toBe(200);
    for (let i = 0; i < 2; i++) expect((await s.fetch('/offline/bundle', auth)).status).toBe(400);
    for (const path of ['/audit/export', '/offline/bundle?activationId=x']) {
      const r = await s.fetch(path, auth);
      expect(r.status, path).toBe(429);
      expect(Number(r.headers.get('retry-after')), path).toBeGreaterThan(0);
      expect(((await r.json()) as { errors: { extensions: { code: string } }[] }).errors[0]!.extensions.code, path).toBe('RATE_LIMITED');
    }
    expect((await s.gql('{ products { id } }', {}, { token })).errors?.[0]?.extensions?.code).toBe('RATE_LIMITED');
  });

  it('counts the subscriptions a credential starts, over graphql-ws and HTTP', async () => {
    const { token } = await s.tenant();
    const ws = wsClient(await listen(s.app), token);
    try {
      const feeds = Array.from({ length: 5 }, () => subscribe(ws.client, 'subscription { activity { id } }'));
      const over = subscribe(ws.client, 'subscription { activity { id } }');
      for (const deadline = Date.now() + 10_000; !over.errors.length && !over.done && Date.now() < deadline; ) await sleep(10);
      expect(JSON.stringify(over.errors)).toContain('RATE_LIMITED');
      expect(feeds.every((f) => f.errors.length === 0 && !f.done)).toBe(true);
      feeds.forEach((f) => f.stop());
    } finally {
      await ws.dispose();
    }
    const sse = await s.fetch('/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query: 'subscription { activity { id } }' }),
    });
    expect(await sse.text()).toContain('RATE_LIMITED');
  });
});

describe('rate limits shared through Redis by two instances', () => {
  const redisUrl = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
  let a: TestServer;
  let b: TestServer;
  beforeAll(async () => {
    const env = { REDIS_URL: redisUrl, TESSERA_RATE_LIMIT_KEY_PER_MINUTE: '4', TESSERA_RATE_LIMIT_UNKNOWN_KEYS_PER_MINUTE: '3', TESSERA_TRUST_PROXY: '1' };
    a = await startTestServer({ env });
    b = await startTestServer({ env });
  });
  afterAll(async () => {
    await a.close();
    await b.close();
  });

  it('counts attempts on one key across instances', async () => {
    const key = generateKey('LIC');
    const codes = [];
    for (let i = 0; i < 6; i++) {
      const s = i % 2 ? b : a;
      codes.push(ok(await s.gql(VALIDATE, { input: { key } })).validateLicense.code);
    }
    expect(codes, JSON.stringify(codes)).toEqual(['LICENSE_NOT_FOUND', 'LICENSE_NOT_FOUND', 'LICENSE_NOT_FOUND', 'LICENSE_NOT_FOUND', 'RATE_LIMITED', 'RATE_LIMITED']);
  });

  it('looks up no more unknown keys per address than its budget, across instances and concurrently', async () => {
    const prober = ip();
    const fields = Array.from({ length: 15 }, (_, i) => `v${i}: validateLicense(input: { key: "${generateKey('LIC')}" }) { code }`);
    const answers = await Promise.all([a, b].map(async (s) => Object.values(ok(await s.gql(`query { ${fields.join(' ')} }`, {}, from(prober))) as Record<string, { code: string }>)));
    const codes = answers.flat().map((v) => v.code);
    expect(codes.filter((c) => c === 'LICENSE_NOT_FOUND')).toHaveLength(3);
    expect(codes.filter((c) => c === 'RATE_LIMITED')).toHaveLength(27);
  });

  it('lets a burst of known keys from one address through, more at once than its unknown-key budget, with the budget in Redis', async () => {
    const { token } = await a.tenant();
    // Ten keys, four calls each: within this server's per-key limit of 4.
    const first = await issue(a, token);
    const keys = [first.key, ...(await Promise.all(Array.from({ length: 9 }, () => license(a, token, first.editionId)))).map((l) => l.key)];
    const site = ip();
    const known = await Promise.all(Array.from({ length: 40 }, (_, i) => a.gql(VALIDATE, { input: { key: keys[i % 10] } }, from(site))));
    expect(known.map((r) => ok(r).validateLicense.code)).toEqual(Array(40).fill(null));
    // Every place was given back: the whole budget is left, on both instances (b knows no key of a's).
    const codes = [];
    for (let i = 0; i < 4; i++) codes.push(ok(await (i % 2 ? b : a).gql(VALIDATE, { input: { key: generateKey('LIC') } }, from(site))).validateLicense.code);
    expect(codes).toEqual(['LICENSE_NOT_FOUND', 'LICENSE_NOT_FOUND', 'LICENSE_NOT_FOUND', 'RATE_LIMITED']);
  });

  it('gives a known key its unknown-key point back', async () => {
    const { token } = await a.tenant();
    const { key } = await issue(a, token);
    const site = ip();
    for (let i = 0; i < 4; i++) expect(ok(await a.gql(VALIDATE, { input: { key } }, from(site))).validateLicense).toEqual({ valid: true, code: null });
    const codes = [];
    for (let i = 0; i < 4; i++) codes.push(ok(await (i % 2 ? b : a).gql(VALIDATE, { input: { key: generateKey('LIC') } }, from(site))).validateLicense.code);
    expect(codes).toEqual(['LICENSE_NOT_FOUND', 'LICENSE_NOT_FOUND', 'LICENSE_NOT_FOUND', 'RATE_LIMITED']);
  });
});

describe('points given back after the window rolled over', () => {
  const redis = new Redis(process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379', { maxRetriesPerRequest: 1 });
  afterAll(() => redis.quit());
  const stores: [string, () => RateLimiterAbstract][] = [
    ['in memory', () => new RateLimiterMemory({ points: 60, duration: 1 })],
    ['in Redis', () => new RateLimiterRedis({ storeClient: redis, useRedisPackage: false, keyPrefix: `test:rl:${randomUUID()}`, points: 60, duration: 1 })],
  ];

  for (const [where, make] of stores) {
    it(`leave the new window empty, not overdrawn, when they land together (${where})`, async () => {
      const limiter = make();
      // Sixteen places taken by lookups that then end together (the calls of one batched statement).
      for (let i = 0; i < 16; i++) await limiter.consume('addr', 1);
      const rolled = await limiter.get('addr');
      await new Promise((resolve) => setTimeout(resolve, (rolled?.msBeforeNext ?? 0) + 100));
      await Promise.all(Array.from({ length: 16 }, () => giveBack(limiter, 'addr')));
      expect((await limiter.get('addr'))?.consumedPoints ?? 0).toBe(0);
      // The whole budget is there for the new window.
      for (let i = 0; i < 60; i++) await limiter.consume('addr', 1);
      await expect(limiter.consume('addr', 1)).rejects.toBeInstanceOf(RateLimiterRes);
    });
  }

  it('still return each point taken within the window', async () => {
    const limiter = new RateLimiterMemory({ points: 60, duration: 60 });
    for (let i = 0; i < 16; i++) await limiter.consume('addr', 1);
    await Promise.all(Array.from({ length: 10 }, () => giveBack(limiter, 'addr')));
    expect((await limiter.get('addr'))?.consumedPoints).toBe(6);
  });
});
