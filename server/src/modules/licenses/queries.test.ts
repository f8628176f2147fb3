import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ok, startTestServer, statementRecorder, testDatabaseUrl, type TestServer } from '../../../test/harness.ts';

/**
 * No N+1: the SQL statements the license list and detail queries issue are counted at the embedded
 * database (every statement Prisma or raw SQL sends reaches `pglite.query`), and must not grow with
 * the number of licenses or devices. Dialect-independent, so it runs in the PGlite pass.
 */
describe.skipIf(!!testDatabaseUrl)('SQL statements per query', () => {
  let s: TestServer;
  let token: string;
  let editionId: string;
  let recorder: ReturnType<typeof statementRecorder>;

  beforeAll(async () => {
    s = await startTestServer();
    ({ token } = await s.tenant());
    recorder = statementRecorder(s);
    const productId = ok(await s.gql(`mutation { createProduct(input: { name: "P", code: "p" }) { ... on Product { id } } }`, {}, { token })).createProduct.id;
    editionId = ok(
      await s.gql(
        `mutation($i: CreateEditionInput!) { createEdition(input: $i) { ... on Edition { id } } }`,
        { i: { productId, name: 'E', code: 'e', licenseType: 'PERPETUAL', maxActivations: 50 } },
        { token },
      ),
    ).createEdition.id;
  });
  afterAll(() => s.close());

  async function addLicenses(n: number, devices: number) {
    const customerId = ok(await s.gql(`mutation { createCustomer(input: { name: "C" }) { ... on Customer { id } } }`, {}, { token })).createCustomer.id;
    for (let i = 0; i < n; i++) {
      const { key } = ok(
        await s.gql(`mutation($i: CreateLicenseInput!) { createLicense(input: $i) { ... on CreateLicensePayload { license { key } } } }`, { i: { editionId, customerId, tokenCount: 2 } }, { token }),
      ).createLicense.license;
      for (let d = 0; d < devices; d++) {
        await s.gql(`mutation($input: ActivateInput!) { activate(input: $input) { __typename } }`, { input: { key, fingerprint: `dev-${i}-${d}` } });
      }
    }
  }

  async function count(query: string, variables: Record<string, unknown> = {}) {
    const data = ok(await recorder.during(() => s.gql(query, variables, { token })));
    return { n: recorder.statements.length, data };
  }

  const LIST = `query { licenses(first: 20) { totalCount edges { node {
    key status type expiresAt revision syncState activationsUsed maxActivations
    product { name } edition { name } customer { name }
    activations(first: 2) { totalCount edges { node { fingerprint } } }
  } } } }`;
  const DETAIL = `query($id: ID!) { node(id: $id) { ... on License {
    key status product { name } edition { name } customer { name } tokenKeys { key usedAt }
    activations(first: 50) { totalCount edges { node { fingerprint status hostname appVersion license { activationsUsed } } } }
  } } }`;

  it('the license list costs the same statements for 2 licenses as for 12, with their devices', async () => {
    await addLicenses(2, 2);
    const small = await count(LIST);
    expect(small.data.licenses.edges).toHaveLength(2);
    await addLicenses(10, 3);
    const large = await count(LIST);
    expect(large.data.licenses.edges).toHaveLength(12);
    expect(small.n).toBeGreaterThan(0);
    expect(large.n).toBe(small.n);
    expect(large.n).toBeLessThanOrEqual(8);
  });

  it('the customer list with each license count costs the same statements for 2 customers as for 7', async () => {
    const LIST_CUSTOMERS = `query { customers(first: 50) { edges { node { name email licenseCount } } } }`;
    const before = await count(LIST_CUSTOMERS);
    await addLicenses(2, 0);
    const small = await count(LIST_CUSTOMERS);
    expect(small.data.customers.edges.length).toBe(before.data.customers.edges.length + 1);
    for (let i = 0; i < 5; i++) await addLicenses(i % 2, 0);
    const large = await count(LIST_CUSTOMERS);
    const counts = (r: typeof small) => r.data.customers.edges.map((e: { node: { licenseCount: number } }) => e.node.licenseCount).sort();
    expect(counts(small)).toContain(2);
    // The customers of the tests before, the one with 2 licenses, and five with 0, 1, 0, 1 and 0.
    expect(counts(large)).toEqual([...counts(small), 0, 1, 0, 1, 0].sort());
    expect(large.n).toBe(small.n);
    expect(large.n).toBeLessThanOrEqual(3);
  });

  it('the license detail costs the same statements for 1 device as for 20', async () => {
    await addLicenses(1, 1);
    const few = ok(await s.gql(`query { licenses(first: 1) { edges { node { id } } } }`, {}, { token })).licenses.edges[0].node.id;
    const small = await count(DETAIL, { id: few });
    await addLicenses(1, 20);
    const many = ok(await s.gql(`query { licenses(first: 1) { edges { node { id } } } }`, {}, { token })).licenses.edges[0].node.id;
    const large = await count(DETAIL, { id: many });
    expect(large.data.node.activations.edges).toHaveLength(20);
    expect(small.n).toBeGreaterThan(0);
    expect(large.n).toBe(small.n);
    expect(large.n).toBeLessThanOrEqual(8);
  });
});
