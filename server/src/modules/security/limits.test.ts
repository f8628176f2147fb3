import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse, print, type DocumentNode, Kind, type FragmentDefinitionNode } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OPERATIONS } from '../../../../sdk/src/operations.ts';
import { startTestServer, type TestServer } from '../../../test/harness.ts';

const OPS_DIR = path.resolve(import.meta.dirname, '../../../../web/src/lib/graphql/operations');

/** Every console operation with the fragments it uses, as the console sends it. */
function consoleOperations(): { name: string; query: string }[] {
  const docs = readdirSync(OPS_DIR)
    .filter((f) => f.endsWith('.graphql'))
    .map((f) => parse(readFileSync(path.join(OPS_DIR, f), 'utf8')));
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const d of docs) for (const def of d.definitions) if (def.kind === Kind.FRAGMENT_DEFINITION) fragments.set(def.name.value, def);
  const out: { name: string; query: string }[] = [];
  for (const d of docs) {
    for (const def of d.definitions) {
      if (def.kind !== Kind.OPERATION_DEFINITION) continue;
      const used = new Set<string>();
      const visit = (node: unknown) => {
        if (!node || typeof node !== 'object') return;
        const n = node as { kind?: string; name?: { value: string } };
        if (n.kind === Kind.FRAGMENT_SPREAD && n.name && !used.has(n.name.value)) {
          used.add(n.name.value);
          visit(fragments.get(n.name.value));
        }
        for (const [k, v] of Object.entries(node)) if (k !== 'loc' && typeof v === 'object') visit(v);
      };
      visit(def);
      const doc: DocumentNode = { kind: Kind.DOCUMENT, definitions: [def, ...[...used].map((u) => fragments.get(u)!)] };
      out.push({ name: def.name?.value ?? '(anonymous)', query: print(doc) });
    }
  }
  return out;
}

const LIMIT_CODES = /depth|alias|token|directive|cost/i;

for (const production of [false, true]) {
  describe(`GraphQL limits (${production ? 'production' : 'development'})`, () => {
    let s: TestServer;
    let token: string;
    beforeAll(async () => {
      s = await startTestServer({ env: production ? { NODE_ENV: 'production', LOG_LEVEL: 'silent' } : {} });
      ({ token } = await s.tenant());
    });
    afterAll(() => s.close());

    const problems = (errors: { message: string }[] | undefined) => (errors ?? []).filter((e) => LIMIT_CODES.test(e.message) || /Cannot query|Did you mean|introspection/i.test(e.message));

    it('lets every console operation through', async () => {
      const ops = consoleOperations();
      expect(ops.length).toBeGreaterThan(10);
      for (const op of ops) {
        // Parsed and validated through yoga's plugin chain (armor included), as a request would be.
        const { parse: parseDoc, validate, schema } = s.app.yoga.getEnveloped({});
        let errors: readonly { message: string }[];
        try {
          errors = validate(schema, parseDoc(op.query));
        } catch (err) {
          errors = [err as Error];
        }
        expect(problems([...errors]), `${op.name}: ${JSON.stringify(errors)}`).toEqual([]);
      }
    });

    it('lets every SDK operation through', async () => {
      for (const [name, query] of Object.entries(OPERATIONS)) {
        const r = await s.gql(query, {});
        expect(problems(r.errors), `${name}: ${JSON.stringify(r.errors)}`).toEqual([]);
      }
    });

    it('refuses deep, aliased, long, directive-heavy and costly documents before executing them', async () => {
      // Depth 14 through activation -> license -> activations -> ...: cheap, but too deep.
      const hop = (inner: string) => `license { activations(first: 1) { edges { node { id ${inner} } } } }`;
      const nested = `{ node(id: "x") { ... on Activation { ${hop(hop(hop('')))} } } }`;
      const r1 = await s.gql(nested, {}, { token });
      expect(r1.errors?.[0]?.message).toMatch(/depth/i);
      const aliases = `{ ${Array.from({ length: 40 }, (_, i) => `a${i}: viewer { role }`).join(' ')} }`;
      expect((await s.gql(aliases, {}, { token })).errors?.[0]?.message).toMatch(/alias/i);
      const tokens = `{ ${'__typename '.repeat(3000)} }`;
      expect((await s.gql(tokens, {}, { token })).errors?.[0]?.message).toMatch(/token/i);
      const directives = `{ __typename ${'@skip(if: false) '.repeat(30)} }`;
      expect((await s.gql(directives, {}, { token })).errors?.[0]?.message).toMatch(/directive/i);
      const wide = `{ ${Array.from({ length: 14 }, (_, i) => `l${i}: licenses(first: 100) { edges { node { id key activations(first: 100) { edges { node { id fingerprint ${hop('fingerprint status activatedAt')} } } } } } }`).join(' ')} }`;
      const w = await s.gql(wide, {}, { token });
      expect(w.errors?.[0]?.message, JSON.stringify(w).slice(0, 300)).toMatch(/cost|alias/i);
      // Nothing ran: the refusals are validation errors without data.
      expect(r1.data ?? null).toBeNull();
    });

    it('refuses batched requests', async () => {
      const r = await s.fetch('/graphql', {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify([{ query: '{ __typename }' }, { query: '{ __typename }' }]),
      });
      expect(r.status).toBeGreaterThanOrEqual(400);
    });

    it(production ? 'hides the schema: no introspection, no field suggestions' : 'keeps introspection and suggestions for development', async () => {
      const intro = await s.gql('{ __schema { queryType { name } } }', {}, { token });
      const typo = await s.gql('{ licensez { totalCount } }', {}, { token });
      if (production) {
        expect(intro.errors?.[0]?.message).toMatch(/introspection/i);
        expect(JSON.stringify(typo.errors)).not.toMatch(/Did you mean/);
      } else {
        expect(intro.errors).toBeUndefined();
        expect(JSON.stringify(typo.errors)).toMatch(/Did you mean/);
      }
    });

    it('masks unexpected errors', async () => {
      const r = await s.gql('{ node(id: "not-a-global-id") { id } }', {}, { token });
      for (const e of r.errors ?? []) expect(e.message).not.toMatch(/prisma|stack|at .*\.ts/i);
    });
  });
}
