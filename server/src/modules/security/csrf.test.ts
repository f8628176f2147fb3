import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ok, startTestServer, type TestServer } from '../../../test/harness.ts';

const SIGN_IN = `mutation($input: SignInInput!) { signIn(input: $input) { __typename } }`;
const CREATE_MEMBER = `mutation($input: CreateMemberInput!) { createMember(input: $input) { __typename } }`;
const MUTATION = `mutation { createCustomer(input: { name: "Mallory's" }) { __typename } }`;

describe('CSRF and CORS for cookie sessions', () => {
  let s: TestServer;
  let cookie: string;
  beforeAll(async () => {
    s = await startTestServer({ env: { TESSERA_CORS_ORIGINS: 'https://console.example.com' } });
    const { token, slug } = await s.tenant();
    ok(await s.gql(CREATE_MEMBER, { input: { email: 'eve@example.com', password: 'correct horse battery', role: 'ADMIN' } }, { token }));
    const r = await s.gql(SIGN_IN, { input: { tenant: slug, email: 'eve@example.com', password: 'correct horse battery' } });
    expect(ok(r).signIn.__typename).toBe('SignInSuccess');
    cookie = r.response.headers.get('set-cookie')!.split(';')[0]!;
  });
  afterAll(() => s.close());

  const post = (contentType: string, body: string, extra: Record<string, string> = {}) =>
    s.fetch('/graphql', { method: 'POST', headers: { 'content-type': contentType, cookie, ...extra }, body });

  it('refuses a simple (form or text) POST that carries the session cookie', async () => {
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
      const r = await post(type, JSON.stringify({ query: MUTATION }));
      expect(r.status, type).toBe(403);
      expect(((await r.json()) as { errors: { extensions: { code: string } }[] }).errors[0]!.extensions.code).toBe('CSRF_REJECTED');
    }
    expect(await s.db.prisma.customer.count({ where: { name: "Mallory's" } })).toBe(0);
  });

  it('accepts the console: JSON POSTs, and GET queries', async () => {
    const r = await post('application/json', JSON.stringify({ query: '{ viewer { role } }' }));
    expect(((await r.json()) as { data: { viewer: { role: string } } }).data.viewer.role).toBe('ADMIN');
    const header = await post('text/plain', JSON.stringify({ query: '{ viewer { role } }' }), { 'x-graphql-yoga-csrf': '1' });
    expect(header.status).not.toBe(403);
    const get = await s.fetch(`/graphql?query=${encodeURIComponent('{ viewer { role } }')}`, { headers: { cookie, accept: 'application/json' } });
    expect(((await get.json()) as { data: { viewer: { role: string } } }).data.viewer.role).toBe('ADMIN');
  });

  it('never runs a mutation from a GET', async () => {
    const r = await s.fetch(`/graphql?query=${encodeURIComponent(MUTATION)}`, { headers: { cookie, accept: 'application/json' } });
    expect(r.status).toBe(405);
    expect(await s.db.prisma.customer.count({ where: { name: "Mallory's" } })).toBe(0);
  });

  it('allows credentials only to the configured origins', async () => {
    const preflight = (origin: string) =>
      s.fetch('/graphql', {
        method: 'OPTIONS',
        headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
      });
    const evil = await preflight('https://evil.example.net');
    expect(evil.headers.get('access-control-allow-credentials')).toBeNull();
    const good = await preflight('https://console.example.com');
    expect(good.headers.get('access-control-allow-origin')).toBe('https://console.example.com');
    expect(good.headers.get('access-control-allow-credentials')).toBe('true');
  });
});
