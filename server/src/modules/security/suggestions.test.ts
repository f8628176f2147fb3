import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { operationHash } from '../../../../sdk/src/client.ts';
import { startTestServer, type TestServer } from '../../../test/harness.ts';
import { listen, wsClient } from '../../../test/ws.ts';

/**
 * graphql-js suggests names ("Did you mean ...?") in validation errors and in variable coercion
 * errors, in several wordings. In production none may reach the caller (they map the schema without
 * introspection); the rest of each message stays. Development keeps them.
 */

type Errors = { message: string }[] | undefined;

/** Each case: a document, its variables, and a part of its message that must stay after the suggestion goes. */
const CASES: { name: string; query: string; variables?: Record<string, unknown>; stays: RegExp }[] = [
  { name: 'enum value, literal', query: '{ licenses(status: ACTIV) { totalCount } }', stays: /Value "ACTIV" does not exist in "LicenseStatus" enum\.$/ },
  { name: 'enum value, variable', query: 'query($s: LicenseStatus) { licenses(status: $s) { totalCount } }', variables: { s: 'ACTIV' }, stays: /Value "ACTIV" does not exist in "LicenseStatus" enum\.$/ },
  {
    name: 'input field, variable',
    query: 'mutation($i: CreateProductInput!) { createProduct(input: $i) { __typename } }',
    variables: { i: { nam: 'x', code: 'y' } },
    stays: /Field "nam" is not defined by type "CreateProductInput"\.$/,
  },
  { name: 'input field, literal', query: 'mutation { createProduct(input: { nam: "x", code: "y" }) { __typename } }', stays: /Field "nam" is not defined by type "CreateProductInput"\.$/ },
  { name: 'field', query: '{ licensez { totalCount } }', stays: /^Cannot query field "licensez" on type "Query"\.$/ },
  { name: 'argument', query: '{ licenses(statu: ACTIVE) { totalCount } }', stays: /^Unknown argument "statu" on field "Query\.licenses"\.$/ },
  { name: 'type', query: 'query($s: LicenseStatu) { licenses(status: $s) { totalCount } }', stays: /^Unknown type "LicenseStatu"\.$/ },
];

const messages = (errors: Errors) => (errors ?? []).map((e) => e.message);

/** A query over graphql-ws: the errors it ends with (validation errors, or a result's errors). */
async function overSocket(url: string, token: string, query: string, variables?: Record<string, unknown>): Promise<Errors> {
  const ws = wsClient(url, token);
  try {
    return await new Promise<Errors>((resolve, reject) => {
      let errors: Errors;
      ws.client.subscribe(
        { query, variables },
        {
          next: (result) => (errors = result.errors as Errors),
          error: (e) => (Array.isArray(e) ? resolve(e as Errors) : reject(e)),
          complete: () => resolve(errors),
        },
      );
    });
  } finally {
    await ws.dispose();
  }
}

for (const production of [true, false]) {
  describe(`"Did you mean" suggestions (${production ? 'production: none' : 'development: kept'})`, () => {
    let s: TestServer;
    let token: string;
    let url: string;
    beforeAll(async () => {
      s = await startTestServer({ env: production ? { NODE_ENV: 'production', LOG_LEVEL: 'silent' } : {} });
      ({ token } = await s.tenant());
      url = await listen(s.app);
    });
    afterAll(() => s.close());

    for (const c of CASES) {
      it(`over HTTP: ${c.name}`, async () => {
        const r = await s.gql(c.query, c.variables ?? {}, { token });
        const all = messages(r.errors);
        if (production) {
          expect(all.join('\n')).not.toMatch(/Did you mean|Suggestion/i);
          expect(all.some((m) => c.stays.test(m)), all.join('\n')).toBe(true);
        } else {
          expect(all.join('\n')).toMatch(/Did you mean/);
        }
      });
    }

    it('over graphql-ws: an enum value in variables and an input field in a literal', async () => {
      for (const c of [CASES[1]!, CASES[3]!]) {
        const all = messages(await overSocket(url, token, c.query, c.variables));
        if (production) {
          expect(all.join('\n')).not.toMatch(/Did you mean|Suggestion/i);
          expect(all.some((m) => c.stays.test(m)), all.join('\n')).toBe(true);
        } else {
          expect(all.join('\n')).toMatch(/Did you mean/);
        }
      }
    });

    it('for an SDK operation sent by hash (compiled by graphql-jit) without credentials', async () => {
      const response = await s.fetch('/graphql', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          operationName: 'Activate',
          variables: { input: { key: 'LIC-X', fingerprnt: 'device-1' } },
          extensions: { persistedQuery: { version: 1, sha256Hash: operationHash('Activate') } },
        }),
      });
      const all = messages(((await response.json()) as { errors?: Errors }).errors);
      if (production) {
        expect(all.join('\n')).not.toMatch(/Did you mean|Suggestion/i);
        expect(all.some((m) => /Field "fingerprnt" is not defined by type "ActivateInput"\.$/.test(m)), all.join('\n')).toBe(true);
      } else {
        expect(all.join('\n')).toMatch(/Did you mean "fingerprint"\?/);
      }
    });
  });
}
