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
const CREATE_FEATURE = `mutation($input: CreateFeatureInput!) {
  createFeature(input: $input) { __typename ... on Feature { id code name description } ... on Error { message } ... on ValidationError { fields { path message } } }
}`;
const CREATE_METER = `mutation($input: CreateMeterInput!) {
  createMeter(input: $input) { __typename ... on Meter { id code name unit } ... on Error { message } ... on ValidationError { fields { path message } } }
}`;
const EDITION_FIELDS = `id name code provisioning clientType licenseType validityDays maxActivations goodwillActivations seats leaseSeconds
  heartbeatSeconds inactivityReclaimSeconds deploymentMode allowOffline fingerprintMatch features meters { meter quota period } allowedVersions`;
const CREATE_EDITION = `mutation($input: CreateEditionInput!) {
  createEdition(input: $input) { __typename ... on Edition { ${EDITION_FIELDS} } ... on Error { message } ... on ValidationError { fields { path message } } }
}`;
const CREATE_CUSTOMER = `mutation($input: CreateCustomerInput!) {
  createCustomer(input: $input) { __typename ... on Customer { id name email } ... on Error { message } ... on ValidationError { fields { path message } } }
}`;

const paths = (r: { fields: { path: string }[] }) => [...new Set(r.fields.map((f) => f.path))].sort();

async function counts() {
  const p = s.db.prisma;
  return {
    products: await p.product.count(),
    features: await p.feature.count(),
    meters: await p.meter.count(),
    editions: await p.edition.count(),
    customers: await p.customer.count(),
    events: await p.auditEvent.count(),
  };
}

describe('products', () => {
  it('creates a product and rejects a duplicate code', async () => {
    const first = ok(await s.gql(CREATE_PRODUCT, { input: { name: 'CAD', code: 'cad' } }, { token }));
    expect(first.createProduct.__typename).toBe('Product');
    const before = await counts();
    const dup = ok(await s.gql(CREATE_PRODUCT, { input: { name: 'CAD 2', code: 'cad' } }, { token }));
    expect(dup.createProduct.__typename).toBe('ConflictError');
    expect(await counts()).toEqual(before);
    expect(await s.db.prisma.product.count({ where: { code: 'cad' } })).toBe(1);
  });

  it('the same code in another tenant is fine', async () => {
    const other = await s.tenant();
    const r = ok(await s.gql(CREATE_PRODUCT, { input: { name: 'CAD', code: 'cad' } }, { token: other.token }));
    expect(r.createProduct.__typename).toBe('Product');
  });

  it('rejects bad input with ValidationError', async () => {
    const before = await counts();
    const r = ok(await s.gql(CREATE_PRODUCT, { input: { name: 'x'.repeat(500), code: 'bad code!' } }, { token }));
    expect(r.createProduct.__typename).toBe('ValidationError');
    expect(paths(r.createProduct)).toEqual(['code', 'name']);
    const huge = ok(await s.gql(CREATE_PRODUCT, { input: { name: 'x'.repeat(10_240), code: 'y'.repeat(10_240) } }, { token }));
    expect(paths(huge.createProduct)).toEqual(['code', 'name']);
    const blank = ok(await s.gql(CREATE_PRODUCT, { input: { name: '   ', code: '' } }, { token }));
    expect(paths(blank.createProduct)).toEqual(['code', 'name']);
    expect(await counts()).toEqual(before);
  });

  it('requires credentials', async () => {
    const r = await s.gql(CREATE_PRODUCT, { input: { name: 'a', code: 'a' } });
    expect(r.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });

  it('20 concurrent creates of one code give exactly one product; the rest ConflictError', async () => {
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => s.gql(CREATE_PRODUCT, { input: { name: `Race ${i}`, code: 'race' } }, { token })),
    );
    const kinds = results.map((r) => ok(r).createProduct.__typename);
    expect(kinds.filter((k) => k === 'Product')).toHaveLength(1);
    expect(kinds.filter((k) => k === 'ConflictError')).toHaveLength(19);
    expect(await s.db.prisma.product.count({ where: { code: 'race' } })).toBe(1);
    expect(await s.db.prisma.auditEvent.count({ where: { type: 'product.created', payload: { path: ['code'], equals: 'race' } } })).toBe(1);
  });
});

describe('features, meters and editions', () => {
  let productId: string;
  beforeAll(async () => {
    productId = ok(await s.gql(CREATE_PRODUCT, { input: { name: 'Editor', code: 'editor' } }, { token })).createProduct.id;
    for (const code of ['export', 'cloud-sync']) {
      const f = ok(await s.gql(CREATE_FEATURE, { input: { productId, code, name: code, description: `The ${code} feature` } }, { token }));
      expect(f.createFeature).toMatchObject({ __typename: 'Feature', code });
    }
    const m = ok(await s.gql(CREATE_METER, { input: { productId, code: 'renders', name: 'Renders', unit: 'render' } }, { token }));
    expect(m.createMeter).toMatchObject({ __typename: 'Meter', code: 'renders', unit: 'render' });
  });

  it('features and meters: duplicates conflict, bad input and unknown products are typed errors', async () => {
    const before = await counts();
    expect(ok(await s.gql(CREATE_FEATURE, { input: { productId, code: 'export', name: 'again' } }, { token })).createFeature.__typename).toBe('ConflictError');
    expect(ok(await s.gql(CREATE_METER, { input: { productId, code: 'renders', name: 'again' } }, { token })).createMeter.__typename).toBe('ConflictError');
    const bad = ok(await s.gql(CREATE_FEATURE, { input: { productId, code: 'has space', name: '', description: 'd'.repeat(10_000) } }, { token }));
    expect(paths(bad.createFeature)).toEqual(['code', 'description', 'name']);
    const badMeter = ok(await s.gql(CREATE_METER, { input: { productId, code: 'm', name: 'M', unit: 'u'.repeat(100) } }, { token }));
    expect(paths(badMeter.createMeter)).toEqual(['unit']);
    const missing = ok(await s.gql(CREATE_FEATURE, { input: { productId: '7d3f2c9a-2b4e-4c1a-9f1e-0a1b2c3d4e5f', code: 'f', name: 'F' } }, { token }));
    expect(missing.createFeature.__typename).toBe('NotFoundError');
    const malformed = ok(await s.gql(CREATE_METER, { input: { productId: 'nope', code: 'm', name: 'M' } }, { token }));
    expect(malformed.createMeter.__typename).toBe('ValidationError');
    expect(paths(malformed.createMeter)).toEqual(['productId']);
    expect(await counts()).toEqual(before);
  });

  it('creates an edition with every CONTRACT.md field', async () => {
    const input = {
      productId,
      name: 'Pro',
      code: 'pro',
      provisioning: 'NAMED',
      clientType: 'USERS',
      licenseType: 'SUBSCRIPTION',
      validityDays: 365,
      maxActivations: 3,
      goodwillActivations: 1,
      heartbeatSeconds: 3600,
      inactivityReclaimSeconds: 86_400,
      deploymentMode: 'HYBRID',
      allowOffline: true,
      fingerprintMatch: 'ANY_TWO',
      features: ['export', 'cloud-sync'],
      meters: [{ meter: 'renders', quota: 1000, period: 'MONTH' }],
      allowedVersions: '>=2.0.0 <3.0.0',
    };
    const r = ok(await s.gql(CREATE_EDITION, { input }, { token }));
    const { productId: _p, ...expected } = input;
    expect(r.createEdition).toMatchObject({ __typename: 'Edition', ...expected, seats: null, leaseSeconds: null });

    const floating = ok(
      await s.gql(
        CREATE_EDITION,
        { input: { productId, name: 'Float', code: 'float', provisioning: 'FLOATING', licenseType: 'FLOATING', seats: 10, leaseSeconds: 600, deploymentMode: 'OFFLINE' } },
        { token },
      ),
    );
    expect(floating.createEdition).toMatchObject({ __typename: 'Edition', seats: 10, leaseSeconds: 600, allowOffline: true, maxActivations: null });

    const defaults = ok(await s.gql(CREATE_EDITION, { input: { productId, name: 'Basic', code: 'basic', licenseType: 'NODE_LOCKED' } }, { token }));
    expect(defaults.createEdition).toMatchObject({
      provisioning: 'NAMED',
      clientType: 'DEVICES',
      validityDays: null,
      maxActivations: 1,
      goodwillActivations: 0,
      deploymentMode: 'ONLINE',
      allowOffline: false,
      fingerprintMatch: 'EXACT',
      features: [],
      meters: [],
      allowedVersions: null,
    });
    const anyVersion = ok(await s.gql(CREATE_EDITION, { input: { productId, name: 'Any', code: 'any', licenseType: 'PERPETUAL', allowedVersions: '  ' } }, { token }));
    expect(anyVersion.createEdition).toMatchObject({ __typename: 'Edition', allowedVersions: null });
    const dup = ok(await s.gql(CREATE_EDITION, { input: { productId, name: 'Basic', code: 'basic', licenseType: 'PERPETUAL' } }, { token }));
    expect(dup.createEdition.__typename).toBe('ConflictError');

    const product = ok(await s.gql(`query($id: ID!) { node(id: $id) { ... on Product { editions { code } features { code } meters { code } } } }`, { id: productId }, { token }));
    expect(product.node.editions.map((e: { code: string }) => e.code)).toEqual(['pro', 'float', 'basic', 'any']);
    expect(product.node.features.map((e: { code: string }) => e.code)).toEqual(['cloud-sync', 'export']);
  });

  const invalid: [string, Record<string, unknown>, string[]][] = [
    ['goodwill without a cap', { licenseType: 'PERPETUAL', goodwillActivations: 2 }, ['goodwillActivations']],
    ['seats on a NAMED edition', { licenseType: 'PERPETUAL', seats: 5 }, ['seats']],
    ['a lease on a NAMED edition', { licenseType: 'PERPETUAL', leaseSeconds: 600 }, ['leaseSeconds']],
    ['FLOATING without seats', { licenseType: 'FLOATING', provisioning: 'FLOATING' }, ['seats']],
    ['FLOATING type with NAMED provisioning', { licenseType: 'FLOATING' }, ['provisioning']],
    ['negative numbers', { licenseType: 'PERPETUAL', maxActivations: -1, goodwillActivations: -2, heartbeatSeconds: -5 }, ['goodwillActivations', 'heartbeatSeconds', 'maxActivations']],
    ['zero activations', { licenseType: 'PERPETUAL', maxActivations: 0 }, ['maxActivations']],
    ['a negative meter quota', { licenseType: 'PERPETUAL', meters: [{ meter: 'renders', quota: -1, period: 'DAY' }] }, ['meters.0.quota']],
    ['unknown features', { licenseType: 'PERPETUAL', features: ['export', 'teleport'] }, ['features.1']],
    ['a feature listed twice', { licenseType: 'PERPETUAL', features: ['export', 'export'] }, ['features.1']],
    ['unknown meters', { licenseType: 'PERPETUAL', meters: [{ meter: 'nope', quota: 1, period: 'NONE' }] }, ['meters.0.meter']],
    ['a bad semver range', { licenseType: 'PERPETUAL', allowedVersions: 'version two' }, ['allowedVersions']],
    ['TRIAL without validity', { licenseType: 'TRIAL' }, ['validityDays']],
    ['PERPETUAL with validity', { licenseType: 'PERPETUAL', validityDays: 30 }, ['validityDays']],
    ['NODE_LOCKED on two devices', { licenseType: 'NODE_LOCKED', maxActivations: 2 }, ['maxActivations']],
    ['OFFLINE without offline allowed', { licenseType: 'PERPETUAL', deploymentMode: 'OFFLINE', allowOffline: false }, ['allowOffline']],
    ['reclaim before the heartbeat', { licenseType: 'PERPETUAL', heartbeatSeconds: 600, inactivityReclaimSeconds: 300 }, ['inactivityReclaimSeconds']],
    ['validity beyond 100 years', { licenseType: 'SUBSCRIPTION', validityDays: 100_000 }, ['validityDays']],
    ['a 10 KB name', { licenseType: 'PERPETUAL', name: 'n'.repeat(10_240) }, ['name']],
    ['a 10 KB version range', { licenseType: 'PERPETUAL', allowedVersions: '>=1.0.0 '.repeat(1300) }, ['allowedVersions']],
    ['a cap plus goodwill beyond a 32-bit integer', { licenseType: 'PERPETUAL', maxActivations: 2_147_483_647, goodwillActivations: 1 }, ['goodwillActivations']],
    ['an oversized feature code', { licenseType: 'PERPETUAL', features: ['f'.repeat(10_240)] }, ['features.0']],
  ];
  it.each(invalid)('rejects %s with the offending field path and writes nothing', async (_what, terms, expected) => {
    const before = await counts();
    const r = ok(await s.gql(CREATE_EDITION, { input: { productId, name: 'Bad', code: 'bad', ...terms } }, { token }));
    expect(r.createEdition.__typename).toBe('ValidationError');
    expect(paths(r.createEdition)).toEqual(expected);
    expect(await counts()).toEqual(before);
  });

  it('an edition for an unknown or malformed product is a typed error', async () => {
    const before = await counts();
    const unknown = ok(await s.gql(CREATE_EDITION, { input: { productId: '7d3f2c9a-2b4e-4c1a-9f1e-0a1b2c3d4e5f', name: 'E', code: 'e', licenseType: 'PERPETUAL' } }, { token }));
    expect(unknown.createEdition.__typename).toBe('NotFoundError');
    const malformed = ok(await s.gql(CREATE_EDITION, { input: { productId: 'TGljZW5zZTox', name: 'E', code: 'e', licenseType: 'PERPETUAL' } }, { token }));
    expect(malformed.createEdition.__typename).toBe('ValidationError');
    expect(await counts()).toEqual(before);
  });
});

describe('customers', () => {
  it('creates customers, lists and searches them', async () => {
    const a = ok(await s.gql(CREATE_CUSTOMER, { input: { name: 'Initech', email: 'Billing@Initech.example' } }, { token }));
    expect(a.createCustomer).toMatchObject({ __typename: 'Customer', name: 'Initech', email: 'billing@initech.example' });
    ok(await s.gql(CREATE_CUSTOMER, { input: { name: 'Globex' } }, { token }));
    const list = ok(await s.gql(`{ customers(first: 10) { edges { node { name } } } }`, {}, { token }));
    expect(list.customers.edges.map((e: { node: { name: string } }) => e.node.name)).toEqual(['Globex', 'Initech']);
    const found = ok(await s.gql(`{ customers(first: 10, search: "INITECH.ex") { edges { node { name } } } }`, {}, { token }));
    expect(found.customers.edges.map((e: { node: { name: string } }) => e.node.name)).toEqual(['Initech']);
    for (const search of ['%', '_', 'G_obex', 'x'.repeat(10_240)]) {
      const none = ok(await s.gql(`query($q: String) { customers(first: 10, search: $q) { edges { node { name } } } }`, { q: search }, { token }));
      expect(none.customers.edges, search.slice(0, 20)).toEqual([]);
    }
  });

  it('text PostgreSQL cannot store (NUL, unpaired surrogates) is a typed error, in input and in a search', async () => {
    const before = await counts();
    const r = ok(await s.gql(CREATE_CUSTOMER, { input: { name: 'Ini\u0000tech', email: 'a@b.example' } }, { token }));
    expect(r.createCustomer).toMatchObject({ __typename: 'ValidationError', fields: [{ path: 'name', message: 'must not contain NUL characters' }] });
    const p = ok(await s.gql(CREATE_PRODUCT, { input: { name: 'Editor \ud83d', code: 'ed' } }, { token }));
    expect(p.createProduct).toMatchObject({ __typename: 'ValidationError', fields: [{ path: 'name' }] });
    expect(await counts()).toEqual(before);
    // A search reaches the database without a service's checks: still a typed error, not an internal one.
    for (const q of ['a\u0000', 'b\udc00']) {
      const found = await s.gql(`query($q: String) { customers(first: 10, search: $q) { edges { node { name } } } }`, { q }, { token });
      expect(found.errors?.[0]?.extensions?.code, JSON.stringify(q)).toBe('BAD_USER_INPUT');
    }
  });

  it('rejects a bad email and oversized names, writing nothing', async () => {
    const before = await counts();
    const r = ok(await s.gql(CREATE_CUSTOMER, { input: { name: 'n'.repeat(10_240), email: 'not an email' } }, { token }));
    expect(r.createCustomer.__typename).toBe('ValidationError');
    expect(paths(r.createCustomer)).toEqual(['email', 'name']);
    expect(await counts()).toEqual(before);
  });
});
