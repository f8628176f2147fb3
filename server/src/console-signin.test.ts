import { createRequire } from 'node:module';
import path from 'node:path';
import type { DocumentNode } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  LicensesDocument,
  SignInDocument,
  SignOutDocument,
  ViewerDocument,
} from '../../web/src/lib/graphql/generated/graphql.ts';
import { OPERATIONS } from '../../sdk/src/operations.ts';
import { ok, startTestServer, type TestServer } from '../test/harness.ts';

/**
 * In production, callers without credentials may run only known operations: the SDK's and the
 * console's (schema/console-operations.json, generated from web/src/lib/graphql/operations). The
 * console sends full documents before a session exists (its app shell asks who is signed in, the
 * sign-in page signs in) and after one ended (an expired cookie): those must run, anything else not.
 */

// The console's own client library, from the console's dependencies, prints the documents it sends.
const urql = createRequire(path.resolve(import.meta.dirname, '../../web/package.json'))('@urql/core') as {
  stringifyDocument(document: DocumentNode): string;
};

let s: TestServer;
let tenant: { slug: string; token: string };
const member = { email: 'ada@example.com', password: 'correct horse battery' };

beforeAll(async () => {
  s = await startTestServer({ env: { NODE_ENV: 'production', LOG_LEVEL: 'silent' } });
  tenant = await s.tenant();
  ok(await s.gql('mutation($i: CreateMemberInput!) { createMember(input: $i) { __typename } }', { i: { ...member, role: 'ADMIN' } }, { token: tenant.token }));
});
afterAll(() => s.close());

/** A request as the console's fetchExchange makes it: the printed document, its name, the variables, same-origin cookies. */
async function consoleRequest(document: DocumentNode, variables: Record<string, unknown> = {}, cookie?: string) {
  const definition = document.definitions[0] as { name?: { value: string } };
  const response = await s.fetch('/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json', ...(cookie ? { cookie } : {}) },
    body: JSON.stringify({ query: urql.stringifyDocument(document), operationName: definition.name?.value, variables }),
  });
  const body = (await response.json()) as { data?: any; errors?: { message: string; extensions?: { code?: string } }[] };
  return { response, ...body };
}

function sessionCookie(response: Response): string {
  const set = response.headers.getSetCookie().find((c) => c.startsWith('tessera_session='));
  expect(set, 'a session cookie').toBeDefined();
  expect(set).toMatch(/; Secure/i);
  return set!.split(';')[0]!;
}

const codes = (errors: { extensions?: { code?: string } }[] | undefined) => (errors ?? []).map((e) => e.extensions?.code);

describe('production: the console without credentials', () => {
  it('asks who is signed in, signs in, uses its session, signs out', async () => {
    const before = await consoleRequest(ViewerDocument);
    expect(before.data?.viewer ?? null).toBeNull();
    expect(codes(before.errors)).toEqual(['UNAUTHENTICATED']);

    const wrong = await consoleRequest(SignInDocument, { input: { tenant: tenant.slug, email: member.email, password: 'not it' } });
    expect(wrong.errors).toBeUndefined();
    expect(wrong.data.signIn.__typename).toBe('ValidationError');

    const signedIn = await consoleRequest(SignInDocument, { input: { tenant: tenant.slug, ...member } });
    expect(signedIn.errors).toBeUndefined();
    expect(signedIn.data.signIn.__typename).toBe('SignInSuccess');
    const cookie = sessionCookie(signedIn.response);

    const viewer = await consoleRequest(ViewerDocument, {}, cookie);
    expect(viewer.errors).toBeUndefined();
    expect(viewer.data.viewer.role).toBe('ADMIN');
    expect(viewer.data.tenant.slug).toBe(tenant.slug);
    const licenses = await consoleRequest(LicensesDocument, { first: 10 }, cookie);
    expect(licenses.errors).toBeUndefined();
    expect(licenses.data.licenses.totalCount).toBe(0);

    const out = await consoleRequest(SignOutDocument, {}, cookie);
    expect(out.errors).toBeUndefined();
    expect(out.data.signOut).toBe(true);

    // The cookie the browser may still send now names no session: the console learns that its
    // session ended (UNAUTHENTICATED), and signing out again still clears the cookie.
    const stale = await consoleRequest(LicensesDocument, { first: 10 }, cookie);
    expect(codes(stale.errors)).toEqual(['UNAUTHENTICATED']);
    const again = await consoleRequest(SignOutDocument, {}, cookie);
    expect(again.errors).toBeUndefined();
    expect(again.data.signOut).toBe(false);
    expect(again.response.headers.getSetCookie().join()).toMatch(/tessera_session=;/);
  });

  it('asks who is signed in over GET too', async () => {
    const query = encodeURIComponent(urql.stringifyDocument(ViewerDocument));
    const r = await s.fetch(`/graphql?query=${query}&operationName=Viewer`, { headers: { accept: 'application/json' } });
    const body = (await r.json()) as { data?: any; errors?: { extensions?: { code?: string } }[] };
    expect(body.data?.viewer ?? null).toBeNull();
    expect(codes(body.errors)).toEqual(['UNAUTHENTICATED']);
  });

  it('refuses every other document without credentials, over POST and GET', async () => {
    const refused = ['PersistedQueryOnly'];
    const signIn = `mutation SignIn($input: SignInInput!) { signIn(input: $input) { __typename ... on SignInSuccess { memberId } } }`;
    const variables = { input: { tenant: tenant.slug, ...member } };
    for (const query of [signIn, '{ viewer { role } }', '{ __typename }', `${urql.stringifyDocument(ViewerDocument)} query Other { __typename }`]) {
      const r = await s.gql(query, variables);
      expect(r.errors?.map((e) => e.message), query).toEqual(refused);
      expect(r.data ?? null).toBeNull();
    }
    const get = await s.fetch(`/graphql?query=${encodeURIComponent('{ viewer { role } }')}`, { headers: { accept: 'application/json' } });
    expect(((await get.json()) as { errors?: { message: string }[] }).errors?.map((e) => e.message)).toEqual(refused);
    // The SDK's documents run without credentials as text too (its fallback when a hash is unknown).
    expect(ok(await s.gql(OPERATIONS.Ping, {}))).toEqual({ noop: true });
    // With credentials, any document runs.
    expect(ok(await s.gql('{ viewer { role } }', {}, { token: tenant.token }))).toEqual({ viewer: { role: 'OWNER' } });
  });
});
