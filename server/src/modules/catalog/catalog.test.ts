import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ok, startTestServer, type TestServer } from '../../../test/harness.ts';

let s: TestServer;
let token: string;
beforeAll(async () => {
  s = await startTestServer();
  ({ token } = await s.tenant());
});
afterAll(() => s.close());

const CREATE_PRODUCT = `mutation($input: CreateProductInput!) {
  createProduct(input: $input) { __typename ... on Product { id code } ... on Error { message } ... on ValidationError { fields { path message } } }
}`;

describe('products', () => {
  it('creates a product and rejects a duplicate code', async () => {
    const first = ok(await s.gql(CREATE_PRODUCT, { input: { name: 'CAD', code: 'cad' } }, { token }));
    expect(first.createProduct.__typename).toBe('Product');
    const dup = ok(await s.gql(CREATE_PRODUCT, { input: { name: 'CAD 2', code: 'cad' } }, { token }));
    expect(dup.createProduct.__typename).toBe('ConflictError');
    const count = await s.db.prisma.product.count();
    expect(count).toBe(1);
  });

  it('rejects bad input with ValidationError', async () => {
    const r = ok(await s.gql(CREATE_PRODUCT, { input: { name: 'x'.repeat(500), code: 'bad code!' } }, { token }));
    expect(r.createProduct.__typename).toBe('ValidationError');
    expect(r.createProduct.fields.map((f: { path: string }) => f.path).sort()).toEqual(['code', 'name']);
  });

  it('requires credentials', async () => {
    const r = await s.gql(CREATE_PRODUCT, { input: { name: 'a', code: 'a' } });
    expect(r.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });
});
