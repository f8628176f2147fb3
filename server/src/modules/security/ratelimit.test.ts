import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ok, startTestServer, type TestServer } from '../../../test/harness.ts';
import { issue } from '../activation/fixtures.ts';
import { generateKey } from '../licenses/keys.ts';

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
});

describe('rate limits shared through Redis by two instances', () => {
  const redisUrl = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
  let a: TestServer;
  let b: TestServer;
  beforeAll(async () => {
    const env = { REDIS_URL: redisUrl, TESSERA_RATE_LIMIT_KEY_PER_MINUTE: '4' };
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
});
