import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { decodeGlobalID } from '@pothos/plugin-relay';
import { ok, startTestServer, type TestServer } from '../../../test/harness.ts';

let s: TestServer;
let token: string;
let tenantId: string;
let supportToken: string;
let otherToken: string;

const ERR = `... on Error { message } ... on ValidationError { fields { path message } }`;
const EDITION_FIELDS = `id name code licenseType validityDays provisioning maxActivations goodwillActivations seats leaseSeconds deploymentMode allowOffline
  features entitlements { feature limit } meters { meter quota period } allowedVersions archivedAt`;

const CREATE_PRODUCT = `mutation($input: CreateProductInput!) { createProduct(input: $input) { __typename ... on Product { id code } ${ERR} } }`;
const CREATE_FEATURE = `mutation($input: CreateFeatureInput!) { createFeature(input: $input) { __typename ... on Feature { id code } ${ERR} } }`;
const CREATE_METER = `mutation($input: CreateMeterInput!) { createMeter(input: $input) { __typename ... on Meter { id code } ${ERR} } }`;
const CREATE_EDITION = `mutation($input: CreateEditionInput!) { createEdition(input: $input) { __typename ... on Edition { ${EDITION_FIELDS} } ${ERR} } }`;
const CREATE_LICENSE = `mutation($input: CreateLicenseInput!) {
  createLicense(input: $input) { __typename ... on CreateLicensePayload { license { id key maxActivations features } } ${ERR} }
}`;
const UPDATE_LICENSE = `mutation($input: UpdateLicenseInput!) { updateLicense(input: $input) { __typename ... on License { id } ${ERR} } }`;
const RECORD_USAGE = `mutation($input: AuthorizeUsageInput!) { recordUsage(input: $input) { __typename ... on UsageTicket { id } ... on LicensingError { code } } }`;

const UPDATE_PRODUCT = `mutation($input: UpdateProductInput!) { updateProduct(input: $input) { __typename ... on Product { id name code } ${ERR} } }`;
const DELETE_PRODUCT = `mutation($input: DeleteProductInput!) { deleteProduct(input: $input) { __typename ... on DeleteProductPayload { deletedId } ${ERR} } }`;
const UPDATE_FEATURE = `mutation($input: UpdateFeatureInput!) { updateFeature(input: $input) { __typename ... on Feature { id code name description } ${ERR} } }`;
const DELETE_FEATURE = `mutation($input: DeleteFeatureInput!) { deleteFeature(input: $input) { __typename ... on DeleteFeaturePayload { deletedId } ${ERR} } }`;
const UPDATE_METER = `mutation($input: UpdateMeterInput!) { updateMeter(input: $input) { __typename ... on Meter { id code name unit } ${ERR} } }`;
const DELETE_METER = `mutation($input: DeleteMeterInput!) { deleteMeter(input: $input) { __typename ... on DeleteMeterPayload { deletedId } ${ERR} } }`;
const UPDATE_EDITION = `mutation($input: UpdateEditionInput!) { updateEdition(input: $input) { __typename ... on Edition { ${EDITION_FIELDS} } ${ERR} } }`;
const DELETE_EDITION = `mutation($input: DeleteEditionInput!) { deleteEdition(input: $input) { __typename ... on DeleteEditionPayload { deletedId } ${ERR} } }`;
const ARCHIVE_EDITION = `mutation($input: ArchiveEditionInput!) { archiveEdition(input: $input) { __typename ... on Edition { id archivedAt } ${ERR} } }`;
const UNARCHIVE_EDITION = `mutation($input: UnarchiveEditionInput!) { unarchiveEdition(input: $input) { __typename ... on Edition { id archivedAt } ${ERR} } }`;

const CREATE_CUSTOMER = `mutation($input: CreateCustomerInput!) { createCustomer(input: $input) { __typename ... on Customer { id name email } ${ERR} } }`;
const UPDATE_CUSTOMER = `mutation($input: UpdateCustomerInput!) { updateCustomer(input: $input) { __typename ... on Customer { id name email } ${ERR} } }`;
const DELETE_CUSTOMER = `mutation($input: DeleteCustomerInput!) { deleteCustomer(input: $input) { __typename ... on DeleteCustomerPayload { deletedId } ${ERR} } }`;

const UNKNOWN = '7d3f2c9a-2b4e-4c1a-9f1e-0a1b2c3d4e5f';
/** The database id of a Relay global id. */
const raw = (id: string) => decodeGlobalID(id).id;
const paths = (r: { fields: { path: string }[] }) => [...new Set(r.fields.map((f) => f.path))].sort();

beforeAll(async () => {
  s = await startTestServer();
  const t = await s.tenant();
  token = t.token;
  tenantId = t.id;
  otherToken = (await s.tenant()).token;
  const support = ok(await s.gql(`mutation { createApiToken(input: { name: "support", role: SUPPORT }) { __typename ... on CreateApiTokenPayload { token } } }`, {}, { token }));
  supportToken = support.createApiToken.token;
});
afterAll(() => s.close());

/** Every catalogue row of the tenant and the audit log's size: what a refused change must leave as it was. */
async function state() {
  const p = s.db.prisma;
  const where = { tenantId };
  const orderBy = { id: 'asc' } as const;
  return {
    products: await p.product.findMany({ where, orderBy }),
    features: await p.feature.findMany({ where, orderBy }),
    meters: await p.meter.findMany({ where, orderBy }),
    editions: await p.edition.findMany({ where, orderBy }),
    licenses: await p.license.count({ where }),
    events: await p.auditEvent.count(),
  };
}

async function lastEvent(type: string) {
  return s.db.prisma.auditEvent.findFirst({ where: { tenantId, type }, orderBy: { id: 'desc' } });
}

let seq = 0;
/** A product with features export, sync, projects and meters renders, exports. */
async function catalogue() {
  const code = `p${++seq}-${Math.random().toString(36).slice(2, 6)}`;
  const product = ok(await s.gql(CREATE_PRODUCT, { input: { name: `Product ${seq}`, code } }, { token })).createProduct;
  expect(product.__typename).toBe('Product');
  const features = {} as Record<'export' | 'sync' | 'projects', string>;
  for (const f of ['export', 'sync', 'projects'] as const) {
    features[f] = ok(await s.gql(CREATE_FEATURE, { input: { productId: product.id, code: f, name: f, description: `The ${f} feature` } }, { token })).createFeature.id;
  }
  const meters = {} as Record<'renders' | 'exports', string>;
  for (const m of ['renders', 'exports'] as const) {
    meters[m] = ok(await s.gql(CREATE_METER, { input: { productId: product.id, code: m, name: m, unit: m.slice(0, -1) } }, { token })).createMeter.id;
  }
  return { product: product as { id: string; code: string }, features, meters };
}

async function edition(productId: string, input: Record<string, unknown> = {}) {
  const r = ok(
    await s.gql(CREATE_EDITION, { input: { productId, name: 'Pro', code: `e${++seq}`, licenseType: 'SUBSCRIPTION', validityDays: 365, maxActivations: 3, ...input } }, { token }),
  ).createEdition;
  expect(r.__typename).toBe('Edition');
  return r as { id: string; code: string };
}

async function issue(editionId: string, input: Record<string, unknown> = {}) {
  return ok(await s.gql(CREATE_LICENSE, { input: { editionId, ...input } }, { token })).createLicense;
}

describe('products', () => {
  it('renames a product and changes its code, writing product.updated with the changes', async () => {
    const { product } = await catalogue();
    const r = ok(await s.gql(UPDATE_PRODUCT, { input: { productId: product.id, name: 'Renamed', code: `${product.code}-2` } }, { token })).updateProduct;
    expect(r).toMatchObject({ __typename: 'Product', name: 'Renamed', code: `${product.code}-2` });
    const event = await lastEvent('product.updated');
    expect(event).toMatchObject({ subjectType: 'Product', actorType: 'api_token' });
    expect((event!.payload as { changes: object }).changes).toEqual({ name: { from: expect.any(String), to: 'Renamed' }, code: { from: product.code, to: `${product.code}-2` } });

    // Only what is given changes; the same values again change nothing and write no event.
    const events = await s.db.prisma.auditEvent.count();
    const same = ok(await s.gql(UPDATE_PRODUCT, { input: { productId: product.id, name: 'Renamed' } }, { token })).updateProduct;
    expect(same).toMatchObject({ __typename: 'Product', code: `${product.code}-2` });
    expect(await s.db.prisma.auditEvent.count()).toBe(events);
  });

  it('refuses a taken code, an empty name, an unknown, foreign or malformed id, changing nothing', async () => {
    const a = await catalogue();
    const b = await catalogue();
    const foreign = ok(await s.gql(CREATE_PRODUCT, { input: { name: 'Theirs', code: 'theirs' } }, { token: otherToken })).createProduct;
    const before = await state();
    const taken = ok(await s.gql(UPDATE_PRODUCT, { input: { productId: a.product.id, code: b.product.code } }, { token })).updateProduct;
    expect(taken).toMatchObject({ __typename: 'ConflictError', message: `a product with code "${b.product.code}" already exists` });
    const empty = ok(await s.gql(UPDATE_PRODUCT, { input: { productId: a.product.id, name: '  ', code: 'bad code!' } }, { token })).updateProduct;
    expect(empty.__typename).toBe('ValidationError');
    expect(paths(empty)).toEqual(['code', 'name']);
    for (const productId of [UNKNOWN, foreign.id]) {
      expect(ok(await s.gql(UPDATE_PRODUCT, { input: { productId, name: 'x' } }, { token })).updateProduct.__typename).toBe('NotFoundError');
      expect(ok(await s.gql(DELETE_PRODUCT, { input: { productId } }, { token })).deleteProduct.__typename).toBe('NotFoundError');
    }
    const malformed = ok(await s.gql(UPDATE_PRODUCT, { input: { productId: 'nope', name: 'x' } }, { token })).updateProduct;
    expect(paths(malformed)).toEqual(['productId']);
    expect(await state()).toEqual(before);
    expect(await s.db.prisma.product.findUniqueOrThrow({ where: { id: raw(foreign.id) } })).toMatchObject({ name: 'Theirs', code: 'theirs' });
  });

  it('deletes an unused product with its editions, features and meters; refuses one that issued licenses', async () => {
    const unused = await catalogue();
    await edition(unused.product.id, { features: ['export'] });
    const r = ok(await s.gql(DELETE_PRODUCT, { input: { productId: unused.product.id } }, { token })).deleteProduct;
    expect(r.__typename).toBe('DeleteProductPayload');
    expect(r.deletedId).toBeTruthy();
    expect(await s.db.prisma.product.count({ where: { id: raw(unused.product.id) } })).toBe(0);
    expect(await s.db.prisma.feature.count({ where: { productId: raw(unused.product.id) } })).toBe(0);
    expect(await s.db.prisma.edition.count({ where: { productId: raw(unused.product.id) } })).toBe(0);
    const event = await lastEvent('product.deleted');
    expect(event).toMatchObject({ subjectId: raw(unused.product.id) });
    expect(event!.payload).toMatchObject({ code: unused.product.code, features: ['export', 'projects', 'sync'], meters: ['exports', 'renders'] });

    const used = await catalogue();
    const e = await edition(used.product.id);
    for (let i = 0; i < 2; i++) expect((await issue(e.id)).__typename).toBe('CreateLicensePayload');
    const before = await state();
    const refused = ok(await s.gql(DELETE_PRODUCT, { input: { productId: used.product.id } }, { token })).deleteProduct;
    expect(refused.__typename).toBe('ConflictError');
    expect(refused.message).toMatch(/^2 licenses were issued for this product/);
    expect(await state()).toEqual(before);
  });
});

describe('features', () => {
  it('updates name and description (empty clears it), writing feature.updated', async () => {
    const { features } = await catalogue();
    const r = ok(await s.gql(UPDATE_FEATURE, { input: { featureId: features.export, name: 'PDF export', description: '' } }, { token })).updateFeature;
    expect(r).toMatchObject({ __typename: 'Feature', code: 'export', name: 'PDF export', description: null });
    const event = await lastEvent('feature.updated');
    expect(event!.payload).toMatchObject({ code: 'export', changes: { name: { from: 'export', to: 'PDF export' }, description: { from: 'The export feature', to: null } } });
    const before = await state();
    const bad = ok(await s.gql(UPDATE_FEATURE, { input: { featureId: features.export, name: '', description: 'd'.repeat(3000) } }, { token })).updateFeature;
    expect(paths(bad)).toEqual(['description', 'name']);
    expect(await state()).toEqual(before);
  });

  it('deletes an unused feature; refuses one an edition or a license names, saying what uses it', async () => {
    const { product, features } = await catalogue();
    const r = ok(await s.gql(DELETE_FEATURE, { input: { featureId: features.sync } }, { token })).deleteFeature;
    expect(r.__typename).toBe('DeleteFeaturePayload');
    expect(await s.db.prisma.feature.count({ where: { id: raw(features.sync) } })).toBe(0);
    expect(await lastEvent('feature.deleted')).toMatchObject({ subjectId: raw(features.sync), payload: { productId: raw(product.id), code: 'sync' } });

    const pro = await edition(product.id, { features: ['export'], entitlements: [{ feature: 'projects', limit: 10 }] });
    let before = await state();
    const byEdition = ok(await s.gql(DELETE_FEATURE, { input: { featureId: features.export } }, { token })).deleteFeature;
    expect(byEdition).toMatchObject({ __typename: 'ConflictError', message: `feature "export" is still used by 1 edition (${pro.code}) (take it out of their terms first); it cannot be deleted` });
    const byEntitlement = ok(await s.gql(DELETE_FEATURE, { input: { featureId: features.projects } }, { token })).deleteFeature;
    expect(byEntitlement.__typename).toBe('ConflictError');
    expect(byEntitlement.message).toContain(`1 edition (${pro.code})`);
    expect(await state()).toEqual(before);

    // The edition drops it, but a license issued earlier still has it.
    expect((await issue(pro.id)).__typename).toBe('CreateLicensePayload');
    expect((await issue(pro.id)).__typename).toBe('CreateLicensePayload');
    expect(ok(await s.gql(UPDATE_EDITION, { input: { editionId: pro.id, features: [] } }, { token })).updateEdition.features).toEqual([]);
    before = await state();
    const byLicense = ok(await s.gql(DELETE_FEATURE, { input: { featureId: features.export } }, { token })).deleteFeature;
    expect(byLicense).toMatchObject({ __typename: 'ConflictError', message: 'feature "export" is still used by 2 licenses (take it out of their terms first); it cannot be deleted' });
    expect(await state()).toEqual(before);
  });

  it('refuses unknown, foreign and malformed ids, changing nothing', async () => {
    const theirs = await s.gql(CREATE_PRODUCT, { input: { name: 'T', code: `t${++seq}` } }, { token: otherToken });
    const foreignFeature = ok(await s.gql(CREATE_FEATURE, { input: { productId: ok(theirs).createProduct.id, code: 'f', name: 'F' } }, { token: otherToken })).createFeature.id;
    const before = await state();
    for (const featureId of [UNKNOWN, foreignFeature]) {
      expect(ok(await s.gql(UPDATE_FEATURE, { input: { featureId, name: 'x' } }, { token })).updateFeature.__typename).toBe('NotFoundError');
      expect(ok(await s.gql(DELETE_FEATURE, { input: { featureId } }, { token })).deleteFeature.__typename).toBe('NotFoundError');
    }
    expect(paths(ok(await s.gql(DELETE_FEATURE, { input: { featureId: 'TWV0ZXI6MQ==' } }, { token })).deleteFeature)).toEqual(['featureId']);
    expect(await state()).toEqual(before);
    expect(await s.db.prisma.feature.count({ where: { id: raw(foreignFeature) } })).toBe(1);
  });
});

describe('meters', () => {
  it('updates name and unit, writing meter.updated', async () => {
    const { meters } = await catalogue();
    const r = ok(await s.gql(UPDATE_METER, { input: { meterId: meters.renders, name: 'Cloud renders', unit: 'frame' } }, { token })).updateMeter;
    expect(r).toMatchObject({ __typename: 'Meter', code: 'renders', name: 'Cloud renders', unit: 'frame' });
    expect((await lastEvent('meter.updated'))!.payload).toMatchObject({ code: 'renders', changes: { unit: { from: 'render', to: 'frame' } } });
    const before = await state();
    const bad = ok(await s.gql(UPDATE_METER, { input: { meterId: meters.renders, unit: 'u'.repeat(100) } }, { token })).updateMeter;
    expect(paths(bad)).toEqual(['unit']);
    for (const meterId of [UNKNOWN]) {
      expect(ok(await s.gql(UPDATE_METER, { input: { meterId, name: 'x' } }, { token })).updateMeter.__typename).toBe('NotFoundError');
      expect(ok(await s.gql(DELETE_METER, { input: { meterId } }, { token })).deleteMeter.__typename).toBe('NotFoundError');
    }
    expect(await state()).toEqual(before);
  });

  it('deletes an unused meter; refuses one that terms name or that has usage on record', async () => {
    const { product, meters } = await catalogue();
    expect(ok(await s.gql(DELETE_METER, { input: { meterId: meters.exports } }, { token })).deleteMeter.__typename).toBe('DeleteMeterPayload');
    expect(await s.db.prisma.meter.count({ where: { id: raw(meters.exports) } })).toBe(0);
    expect(await lastEvent('meter.deleted')).toMatchObject({ subjectId: raw(meters.exports), payload: { code: 'exports' } });

    const metered = await edition(product.id, { meters: [{ meter: 'renders', quota: 100, period: 'NONE' }] });
    let before = await state();
    const byEdition = ok(await s.gql(DELETE_METER, { input: { meterId: meters.renders } }, { token })).deleteMeter;
    expect(byEdition).toMatchObject({ __typename: 'ConflictError', message: `meter "renders" is still used by 1 edition (${metered.code}) (take it out of their terms first); it cannot be deleted` });
    expect(await state()).toEqual(before);

    // Usage recorded, then the meter taken out of every edition and license: its ledger still holds it.
    const lic = await issue(metered.id);
    const used = ok(await s.gql(RECORD_USAGE, { input: { key: lic.license.key, meter: 'renders', quantity: 3, idempotencyKey: 'k1' } })).recordUsage;
    expect(used.__typename).toBe('UsageTicket');
    expect(ok(await s.gql(UPDATE_EDITION, { input: { editionId: metered.id, meters: [] } }, { token })).updateEdition.meters).toEqual([]);
    expect(ok(await s.gql(UPDATE_LICENSE, { input: { licenseId: lic.license.id, meters: [] } }, { token })).updateLicense.__typename).toBe('License');
    before = await state();
    const byLedger = ok(await s.gql(DELETE_METER, { input: { meterId: meters.renders } }, { token })).deleteMeter;
    expect(byLedger).toMatchObject({ __typename: 'ConflictError', message: 'meter "renders" is still used by 1 recorded usage entry; it cannot be deleted' });
    expect(await state()).toEqual(before);
  });
});

describe('editions', () => {
  let product: { id: string };
  beforeEach(async () => {
    ({ product } = await catalogue());
  });

  it('merges the given terms over the stored ones; licenses issued before keep theirs', async () => {
    const pro = await edition(product.id, { features: ['export'], allowedVersions: '>=1.0.0' });
    const earlier = await issue(pro.id);
    const r = ok(await s.gql(UPDATE_EDITION, { input: { editionId: pro.id, name: 'Professional', maxActivations: 5, features: ['export', 'sync'] } }, { token })).updateEdition;
    expect(r).toMatchObject({
      __typename: 'Edition',
      name: 'Professional',
      licenseType: 'SUBSCRIPTION',
      validityDays: 365,
      maxActivations: 5,
      features: ['export', 'sync'],
      allowedVersions: '>=1.0.0',
      archivedAt: null,
    });
    const event = await lastEvent('edition.updated');
    expect(event).toMatchObject({ subjectId: raw(pro.id), subjectType: 'Edition' });
    expect((event!.payload as { changes: object }).changes).toEqual({
      name: { from: 'Pro', to: 'Professional' },
      maxActivations: { from: 3, to: 5 },
      features: { from: ['export'], to: ['export', 'sync'] },
    });
    const later = await issue(pro.id);
    expect(earlier.license).toMatchObject({ maxActivations: 3, features: ['export'] });
    expect(later.license).toMatchObject({ maxActivations: 5, features: ['export', 'sync'] });
    expect(await s.db.prisma.license.findUniqueOrThrow({ where: { id: raw(earlier.license.id) } })).toMatchObject({ maxActivations: 3, revision: 1 });

    // Clearing with null, and the defaults a change of provisioning brings, follow createEdition.
    const floating = ok(await s.gql(UPDATE_EDITION, { input: { editionId: pro.id, provisioning: 'FLOATING', seats: 10, maxActivations: null } }, { token })).updateEdition;
    expect(floating).toMatchObject({ __typename: 'Edition', provisioning: 'FLOATING', seats: 10, leaseSeconds: 900, maxActivations: null });

    const events = await s.db.prisma.auditEvent.count();
    expect(ok(await s.gql(UPDATE_EDITION, { input: { editionId: pro.id, seats: 10 } }, { token })).updateEdition.__typename).toBe('Edition');
    expect(await s.db.prisma.auditEvent.count()).toBe(events);
  });

  const invalid: [string, Record<string, unknown>, string[]][] = [
    ['seats on a NAMED edition', { seats: 5 }, ['seats']],
    ['goodwill without a cap', { maxActivations: null, goodwillActivations: 2 }, ['goodwillActivations']],
    ['an unknown feature', { features: ['teleport'] }, ['features.0']],
    ['a feature both on/off and limited', { features: ['projects'], entitlements: [{ feature: 'projects', limit: 5 }] }, ['entitlements.0.feature']],
    ['an unknown meter', { meters: [{ meter: 'nope', quota: 1, period: 'DAY' }] }, ['meters.0.meter']],
    ['a TRIAL without validity', { licenseType: 'TRIAL', validityDays: null }, ['validityDays']],
    ['PERPETUAL keeping the validity', { licenseType: 'PERPETUAL' }, ['validityDays']],
    ['a bad semver range', { allowedVersions: 'two' }, ['allowedVersions']],
    ['an empty name', { name: ' ' }, ['name']],
    ['a negative number', { heartbeatSeconds: -1 }, ['heartbeatSeconds']],
    ['a null non-nullable term', { goodwillActivations: null }, ['goodwillActivations']],
  ];
  it.each(invalid)('refuses %s with the offending field and changes nothing', async (_what, terms, expected) => {
    const pro = await edition(product.id);
    const before = await state();
    const r = ok(await s.gql(UPDATE_EDITION, { input: { editionId: pro.id, ...terms } }, { token })).updateEdition;
    expect(r.__typename).toBe('ValidationError');
    expect(paths(r)).toEqual(expected);
    expect(await state()).toEqual(before);
  });

  it('deletes an edition no license came from; refuses one that issued licenses', async () => {
    const unused = await edition(product.id);
    expect(ok(await s.gql(DELETE_EDITION, { input: { editionId: unused.id } }, { token })).deleteEdition.__typename).toBe('DeleteEditionPayload');
    expect(await s.db.prisma.edition.count({ where: { id: raw(unused.id) } })).toBe(0);
    expect(await lastEvent('edition.deleted')).toMatchObject({ subjectId: raw(unused.id), payload: { code: unused.code } });

    const used = await edition(product.id);
    for (let i = 0; i < 3; i++) await issue(used.id);
    // The count the console reads to offer the delete or say why not: the same licenses the refusal counts.
    const counted = ok(await s.gql(`query($id: ID!) { node(id: $id) { ... on Edition { licenseCount } } }`, { id: used.id }, { token })).node;
    expect(counted).toEqual({ licenseCount: 3 });
    const before = await state();
    const refused = ok(await s.gql(DELETE_EDITION, { input: { editionId: used.id } }, { token })).deleteEdition;
    expect(refused).toMatchObject({ __typename: 'ConflictError', message: '3 licenses were issued from this edition; archive it instead to stop new licenses' });
    for (const editionId of [UNKNOWN]) {
      expect(ok(await s.gql(UPDATE_EDITION, { input: { editionId, maxActivations: 1 } }, { token })).updateEdition.__typename).toBe('NotFoundError');
      expect(ok(await s.gql(DELETE_EDITION, { input: { editionId } }, { token })).deleteEdition.__typename).toBe('NotFoundError');
    }
    expect(await state()).toEqual(before);
  });

  it('an archived edition issues no licenses until unarchived; its licenses are untouched', async () => {
    const pro = await edition(product.id);
    const earlier = await issue(pro.id);
    const archived = ok(await s.gql(ARCHIVE_EDITION, { input: { editionId: pro.id } }, { token })).archiveEdition;
    expect(archived.__typename).toBe('Edition');
    expect(archived.archivedAt).toBeTruthy();
    expect(await lastEvent('edition.archived')).toMatchObject({ subjectId: raw(pro.id) });
    const events = await s.db.prisma.auditEvent.count();
    expect(ok(await s.gql(ARCHIVE_EDITION, { input: { editionId: pro.id } }, { token })).archiveEdition.archivedAt).toBe(archived.archivedAt);
    expect(await s.db.prisma.auditEvent.count()).toBe(events);

    const before = await state();
    const refused = await issue(pro.id);
    expect(refused).toMatchObject({ __typename: 'ConflictError', message: `edition "${pro.code}" is archived; unarchive it to issue licenses from it` });
    expect(await state()).toEqual(before);
    expect(await s.db.prisma.license.findUniqueOrThrow({ where: { id: raw(earlier.license.id) } })).toMatchObject({ state: 'ACTIVE' });

    const back = ok(await s.gql(UNARCHIVE_EDITION, { input: { editionId: pro.id } }, { token })).unarchiveEdition;
    expect(back).toMatchObject({ __typename: 'Edition', archivedAt: null });
    expect(await lastEvent('edition.unarchived')).toMatchObject({ subjectId: raw(pro.id) });
    expect((await issue(pro.id)).__typename).toBe('CreateLicensePayload');
  });

  it('another tenant cannot see, change or delete an edition', async () => {
    const pro = await edition(product.id);
    const before = await state();
    for (const [doc, field] of [
      [UPDATE_EDITION, 'updateEdition'],
      [DELETE_EDITION, 'deleteEdition'],
      [ARCHIVE_EDITION, 'archiveEdition'],
      [UNARCHIVE_EDITION, 'unarchiveEdition'],
    ] as const) {
      const r = ok(await s.gql(doc, { input: { editionId: pro.id, ...(field === 'updateEdition' ? { maxActivations: 1 } : {}) } }, { token: otherToken }));
      expect(r[field].__typename, field).toBe('NotFoundError');
    }
    expect(ok(await s.gql(CREATE_LICENSE, { input: { editionId: pro.id } }, { token: otherToken })).createLicense.__typename).toBe('NotFoundError');
    expect(await state()).toEqual(before);
  });
});

describe('roles', () => {
  it('SUPPORT and READ_ONLY cannot change the catalogue (FORBIDDEN), nor can anonymous callers', async () => {
    const { product, features, meters } = await catalogue();
    const pro = await edition(product.id);
    const readOnly = ok(await s.gql(`mutation { createApiToken(input: { name: "ro", role: READ_ONLY }) { ... on CreateApiTokenPayload { token } } }`, {}, { token })).createApiToken.token;
    const before = await state();
    const calls: [string, Record<string, unknown>][] = [
      [UPDATE_PRODUCT, { productId: product.id, name: 'x' }],
      [DELETE_PRODUCT, { productId: product.id }],
      [UPDATE_FEATURE, { featureId: features.export, name: 'x' }],
      [DELETE_FEATURE, { featureId: features.export }],
      [UPDATE_METER, { meterId: meters.renders, name: 'x' }],
      [DELETE_METER, { meterId: meters.renders }],
      [UPDATE_EDITION, { editionId: pro.id, maxActivations: 1 }],
      [DELETE_EDITION, { editionId: pro.id }],
      [ARCHIVE_EDITION, { editionId: pro.id }],
      [UNARCHIVE_EDITION, { editionId: pro.id }],
    ];
    for (const [doc, input] of calls) {
      for (const [caller, code] of [
        [supportToken, 'FORBIDDEN'],
        [readOnly, 'FORBIDDEN'],
        [null, 'UNAUTHENTICATED'],
      ] as const) {
        const r = await s.gql(doc, { input }, { token: caller });
        expect(r.errors?.[0]?.extensions?.code, doc.slice(0, 40)).toBe(code);
      }
    }
    expect(await state()).toEqual(before);
  });
});

describe('customers', () => {
  async function customer(name = `Acme ${++seq}`, email: string | null = `ops${seq}@acme.test`) {
    const c = ok(await s.gql(CREATE_CUSTOMER, { input: { name, email } }, { token })).createCustomer;
    expect(c.__typename).toBe('Customer');
    return c as { id: string; name: string; email: string | null };
  }
  const customerRow = (id: string) => s.db.prisma.customer.findUnique({ where: { id: raw(id) } });

  it('renames a customer and changes or clears its email (SUPPORT may), writing customer.updated with the changes', async () => {
    const c = await customer('Acme', 'ops@acme.test');
    const r = ok(await s.gql(UPDATE_CUSTOMER, { input: { customerId: c.id, name: ' Acme GmbH ', email: 'Billing@Acme.test' } }, { token: supportToken })).updateCustomer;
    expect(r).toMatchObject({ __typename: 'Customer', name: 'Acme GmbH', email: 'billing@acme.test' });
    const event = await lastEvent('customer.updated');
    expect(event).toMatchObject({ subjectType: 'Customer', subjectId: raw(c.id), customerId: raw(c.id) });
    expect((event!.payload as { changes: object }).changes).toEqual({ name: { from: 'Acme', to: 'Acme GmbH' }, email: { from: 'ops@acme.test', to: 'billing@acme.test' } });

    // Only what is given changes; the same values again write nothing; empty clears the email.
    const events = await s.db.prisma.auditEvent.count();
    expect(ok(await s.gql(UPDATE_CUSTOMER, { input: { customerId: c.id, name: 'Acme GmbH' } }, { token })).updateCustomer).toMatchObject({ email: 'billing@acme.test' });
    expect(await s.db.prisma.auditEvent.count()).toBe(events);
    expect(ok(await s.gql(UPDATE_CUSTOMER, { input: { customerId: c.id, email: '' } }, { token })).updateCustomer).toMatchObject({ name: 'Acme GmbH', email: null });
    expect(await customerRow(c.id)).toMatchObject({ name: 'Acme GmbH', email: null });
  });

  it('refuses an empty name, a bad email, an unknown, foreign or malformed id, changing nothing', async () => {
    const c = await customer();
    const foreign = ok(await s.gql(CREATE_CUSTOMER, { input: { name: 'Theirs' } }, { token: otherToken })).createCustomer;
    const customerEvents = () => s.db.prisma.auditEvent.count({ where: { type: { startsWith: 'customer.' } } });
    const before = { rows: await s.db.prisma.customer.findMany({ orderBy: { id: 'asc' } }), events: await customerEvents() };
    const bad = ok(await s.gql(UPDATE_CUSTOMER, { input: { customerId: c.id, name: '  ', email: 'not an email' } }, { token })).updateCustomer;
    expect(bad.__typename).toBe('ValidationError');
    expect(paths(bad)).toEqual(['email', 'name']);
    expect(bad.fields.find((f: { path: string }) => f.path === 'email').message).toMatch(/email/);
    const long = ok(await s.gql(UPDATE_CUSTOMER, { input: { customerId: c.id, name: 'x'.repeat(201) } }, { token })).updateCustomer;
    expect(paths(long)).toEqual(['name']);
    for (const customerId of [UNKNOWN, foreign.id]) {
      expect(ok(await s.gql(UPDATE_CUSTOMER, { input: { customerId, name: 'x' } }, { token })).updateCustomer.__typename).toBe('NotFoundError');
      expect(ok(await s.gql(DELETE_CUSTOMER, { input: { customerId } }, { token })).deleteCustomer.__typename).toBe('NotFoundError');
    }
    expect(paths(ok(await s.gql(UPDATE_CUSTOMER, { input: { customerId: 'nope', name: 'x' } }, { token })).updateCustomer)).toEqual(['customerId']);
    // A license's global id is not a customer's.
    const { product } = await catalogue();
    const license = await issue((await edition(product.id)).id);
    expect(paths(ok(await s.gql(DELETE_CUSTOMER, { input: { customerId: license.license.id } }, { token })).deleteCustomer)).toEqual(['customerId']);
    // The catalogue and license made above wrote their own events, no customer.* one.
    expect({ rows: await s.db.prisma.customer.findMany({ orderBy: { id: 'asc' } }), events: await customerEvents() }).toEqual(before);
  });

  it('deletes a customer without licenses (ADMIN, not SUPPORT); refuses one that holds licenses', async () => {
    const unused = await customer('Typo Ltd', 'typo@example.test');
    const forbidden = await s.gql(DELETE_CUSTOMER, { input: { customerId: unused.id } }, { token: supportToken });
    expect(forbidden.errors?.[0]?.extensions?.code ?? forbidden.data?.deleteCustomer?.__typename).toMatch(/FORBIDDEN|ForbiddenError/);
    expect(await customerRow(unused.id)).not.toBeNull();
    const r = ok(await s.gql(DELETE_CUSTOMER, { input: { customerId: unused.id } }, { token })).deleteCustomer;
    expect(r).toMatchObject({ __typename: 'DeleteCustomerPayload', deletedId: unused.id });
    expect(await customerRow(unused.id)).toBeNull();
    expect((await lastEvent('customer.deleted'))!.payload).toEqual({ name: 'Typo Ltd', email: 'typo@example.test' });

    const holder = await customer();
    const { product } = await catalogue();
    const e = await edition(product.id);
    for (let i = 0; i < 2; i++) expect((await issue(e.id, { customerId: holder.id })).__typename).toBe('CreateLicensePayload');
    const before = await state();
    const refused = ok(await s.gql(DELETE_CUSTOMER, { input: { customerId: holder.id } }, { token })).deleteCustomer;
    expect(refused).toMatchObject({ __typename: 'ConflictError', message: '2 licenses were issued to this customer; it cannot be deleted' });
    expect(await customerRow(holder.id)).not.toBeNull();
    expect(await state()).toEqual(before);
  });

  it('a customer deleted while a license is issued or moved to it: exactly one of the two succeeds, and no license points at a deleted customer', async () => {
    const { product } = await catalogue();
    const e = await edition(product.id);
    for (let round = 0; round < 12; round++) {
      const c = await customer();
      // Even rounds issue a new license to the customer, odd ones move an existing license to it.
      const moved = round % 2 === 1 ? (await issue(e.id)).license.id : null;
      const [given, deleted] = await Promise.all([
        moved
          ? s.gql(UPDATE_LICENSE, { input: { licenseId: moved, customerId: c.id } }, { token })
          : s.gql(CREATE_LICENSE, { input: { editionId: e.id, customerId: c.id } }, { token }),
        s.gql(DELETE_CUSTOMER, { input: { customerId: c.id } }, { token }),
      ]);
      const g = moved ? ok(given).updateLicense : ok(given).createLicense;
      const succeeded = g.__typename === (moved ? 'License' : 'CreateLicensePayload');
      const d = ok(deleted).deleteCustomer.__typename;
      expect(succeeded ? [d] : [g.__typename, d], `round ${round}`).toEqual(succeeded ? ['ConflictError'] : ['NotFoundError', 'DeleteCustomerPayload']);
      expect(await customerRow(c.id)).toEqual(succeeded ? expect.objectContaining({ id: raw(c.id) }) : null);
      expect(await s.db.prisma.license.count({ where: { customerId: raw(c.id) } })).toBe(succeeded ? 1 : 0);
    }
  });
});

describe('races', () => {
  it('a feature deleted while an edition naming it is created: exactly one of the two succeeds', async () => {
    for (let round = 0; round < 8; round++) {
      const { product, features } = await catalogue();
      const [created, deleted] = await Promise.all([
        s.gql(CREATE_EDITION, { input: { productId: product.id, name: 'Race', code: 'race', licenseType: 'PERPETUAL', features: ['sync'] } }, { token }),
        s.gql(DELETE_FEATURE, { input: { featureId: features.sync } }, { token }),
      ]);
      const c = ok(created).createEdition.__typename;
      const d = ok(deleted).deleteFeature.__typename;
      expect([c, d].sort(), `round ${round}`).toEqual(c === 'Edition' ? ['ConflictError', 'Edition'] : ['DeleteFeaturePayload', 'ValidationError']);
      const editions = await s.db.prisma.edition.findMany({ where: { productId: raw(product.id) } });
      const featureLeft = await s.db.prisma.feature.count({ where: { id: raw(features.sync) } });
      // Never an edition naming a feature that no longer exists.
      expect(editions.every((e) => !e.features.includes('sync')) || featureLeft === 1).toBe(true);
    }
  });
});
