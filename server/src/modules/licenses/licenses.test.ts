import { decodeGlobalID } from '@pothos/plugin-relay';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ok, startTestServer, type TestServer } from '../../../test/harness.ts';
import { parseKey } from './keys.ts';

let s: TestServer;
let token: string;
let tenantId: string;
let productId: string;
const editions: Record<string, string> = {};
let customerId: string;

const DAY = 86_400_000;
const dbId = (globalId: string) => decodeGlobalID(globalId).id;

const LICENSE_FIELDS = `id key status type expiresAt startsAt revision syncState maxActivations goodwillActivations activationsUsed seats
  features meters { meter quota period } allowedVersions name customer { id name } product { code } edition { code } tokenKeys { key usedAt }`;
const CREATE_LICENSE = `mutation($input: CreateLicenseInput!) {
  createLicense(input: $input) {
    __typename
    ... on CreateLicensePayload { tokenKeys license { ${LICENSE_FIELDS} } }
    ... on Error { message }
    ... on ValidationError { fields { path message } }
  }
}`;
const UPDATE_LICENSE = `mutation($input: UpdateLicenseInput!) {
  updateLicense(input: $input) { __typename ... on License { ${LICENSE_FIELDS} } ... on Error { message } ... on ValidationError { fields { path message } } }
}`;
const RENEW_LICENSE = `mutation($input: RenewLicenseInput!) {
  renewLicense(input: $input) { __typename ... on License { ${LICENSE_FIELDS} } ... on Error { message } ... on ValidationError { fields { path message } } }
}`;
const transition = (op: 'suspendLicense' | 'reinstateLicense' | 'revokeLicense') => `mutation($id: ID!) {
  ${op}(input: { licenseId: $id }) { __typename ... on License { id status revision syncState } ... on Error { message } ... on ValidationError { fields { path } } }
}`;
const LICENSES = `query($first: Int, $after: String, $customerId: ID, $productId: ID, $status: LicenseStatus, $expiringWithinDays: Int, $search: String) {
  licenses(first: $first, after: $after, customerId: $customerId, productId: $productId, status: $status, expiringWithinDays: $expiringWithinDays, search: $search) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { cursor node { id key name status } }
  }
}`;

const paths = (r: { fields: { path: string }[] }) => [...new Set(r.fields.map((f) => f.path))].sort();

async function gqlOk(query: string, variables: Record<string, unknown> = {}, t = token) {
  return ok(await s.gql(query, variables, { token: t }));
}

async function create(input: Record<string, unknown>, t = token) {
  const r = (await gqlOk(CREATE_LICENSE, { input }, t)).createLicense;
  return r;
}

async function issued(input: Record<string, unknown>) {
  const r = await create(input);
  expect(r.__typename, JSON.stringify(r)).toBe('CreateLicensePayload');
  return r.license as { id: string; key: string; revision: number; expiresAt: string | null; [k: string]: unknown };
}

async function counts() {
  const p = s.db.prisma;
  return {
    licenses: await p.license.count(),
    tokenKeys: await p.tokenKey.count(),
    customers: await p.customer.count(),
    events: await p.auditEvent.count(),
  };
}

async function addActivation(licenseGlobalId: string, status: 'ACTIVE' | 'INACTIVE' | 'RELEASED' = 'ACTIVE') {
  const id = dbId(licenseGlobalId);
  const { productId, customerId } = await s.db.prisma.license.findUniqueOrThrow({ where: { id } });
  await s.db.prisma.activation.create({ data: { tenantId, licenseId: id, productId, customerId, fingerprint: `fp-${Math.random()}`, status } });
}

beforeAll(async () => {
  s = await startTestServer();
  ({ token, id: tenantId } = await s.tenant());
  productId = (await gqlOk(`mutation { createProduct(input: { name: "Studio", code: "studio" }) { ... on Product { id } } }`)).createProduct.id;
  for (const code of ['export', 'cloud-sync', 'plugins']) {
    await gqlOk(`mutation($input: CreateFeatureInput!) { createFeature(input: $input) { __typename } }`, { input: { productId, code, name: code } });
  }
  await gqlOk(`mutation($input: CreateMeterInput!) { createMeter(input: $input) { __typename } }`, { input: { productId, code: 'renders', name: 'Renders' } });
  const defs: Record<string, Record<string, unknown>> = {
    pro: { licenseType: 'SUBSCRIPTION', validityDays: 365, maxActivations: 3, features: ['export'], meters: [{ meter: 'renders', quota: 100, period: 'MONTH' }] },
    perpetual: { licenseType: 'PERPETUAL', maxActivations: 2 },
    trial: { licenseType: 'TRIAL', validityDays: 14, maxActivations: 1 },
    float: { licenseType: 'FLOATING', provisioning: 'FLOATING', seats: 5 },
  };
  for (const [code, terms] of Object.entries(defs)) {
    const r = await gqlOk(`mutation($input: CreateEditionInput!) { createEdition(input: $input) { __typename ... on Edition { id } ... on Error { message } } }`, {
      input: { productId, name: code, code, ...terms },
    });
    expect(r.createEdition.__typename).toBe('Edition');
    editions[code] = r.createEdition.id;
  }
  customerId = (await gqlOk(`mutation { createCustomer(input: { name: "Umbrella", email: "it@umbrella.example" }) { ... on Customer { id } } }`)).createCustomer.id;
});
afterAll(() => s.close());

describe('createLicense', () => {
  it('issues a license from an edition, with overrides, a checksummed key and token keys', async () => {
    const before = Date.now();
    const r = await create({
      editionId: editions.pro,
      customerId,
      name: 'Umbrella HQ',
      maxActivations: 10,
      goodwillActivations: 2,
      features: ['export', 'cloud-sync'],
      allowedVersions: '^3.0.0',
      tokenCount: 3,
      metadata: { crm: 'A-17' },
    });
    expect(r.__typename).toBe('CreateLicensePayload');
    const l = r.license;
    expect(l.key).toMatch(/^LIC-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{12}-[0-9A-HJKMNP-TV-Z]{4}$/);
    expect(parseKey(l.key)).toEqual({ kind: 'LIC', key: l.key });
    expect(l).toMatchObject({
      status: 'ACTIVE',
      type: 'SUBSCRIPTION',
      revision: 1,
      syncState: 'SYNCED',
      maxActivations: 10,
      goodwillActivations: 2,
      activationsUsed: 0,
      features: ['export', 'cloud-sync'],
      meters: [{ meter: 'renders', quota: 100, period: 'MONTH' }],
      allowedVersions: '^3.0.0',
      name: 'Umbrella HQ',
      customer: { id: customerId, name: 'Umbrella' },
      product: { code: 'studio' },
      edition: { code: 'pro' },
    });
    const expires = new Date(l.expiresAt).getTime();
    expect(expires).toBeGreaterThanOrEqual(before + 365 * DAY);
    expect(expires).toBeLessThanOrEqual(Date.now() + 365 * DAY);

    expect(r.tokenKeys).toHaveLength(3);
    expect(new Set(r.tokenKeys).size).toBe(3);
    for (const k of r.tokenKeys) expect(parseKey(k)).toEqual({ kind: 'TOK', key: k });
    expect(l.tokenKeys.map((t: { key: string }) => t.key).sort()).toEqual([...r.tokenKeys].sort());
    expect(await s.db.prisma.tokenKey.count({ where: { licenseId: dbId(l.id) } })).toBe(3);

    const row = await s.db.prisma.license.findUniqueOrThrow({ where: { id: dbId(l.id) } });
    expect(row.metadata).toEqual({ crm: 'A-17' });
    const events = await s.db.prisma.auditEvent.findMany({ where: { licenseId: row.id } });
    expect(events.map((e) => e.type)).toEqual(['license.created']);

    // The edition's terms apply where nothing is overridden.
    const plain = await issued({ editionId: editions.pro });
    expect(plain).toMatchObject({ maxActivations: 3, goodwillActivations: 0, features: ['export'], tokenKeys: [] });
  });

  it('validity: perpetual, N days, until a date', async () => {
    const perpetual = await issued({ editionId: editions.perpetual });
    expect(perpetual.expiresAt).toBeNull();
    expect(perpetual.type).toBe('PERPETUAL');

    const before = Date.now();
    const days = await issued({ editionId: editions.pro, validityDays: 30 });
    const exp = new Date(days.expiresAt!).getTime();
    expect(exp).toBeGreaterThanOrEqual(before + 30 * DAY);
    expect(exp).toBeLessThanOrEqual(Date.now() + 30 * DAY);

    const until = new Date(Date.now() + 90 * DAY);
    until.setMilliseconds(0);
    const dated = await issued({ editionId: editions.pro, expiresAt: until.toISOString() });
    expect(dated.expiresAt).toBe(until.toISOString());

    const trial = await issued({ editionId: editions.trial });
    expect(trial.type).toBe('TRIAL');
    expect(new Date(trial.expiresAt!).getTime()).toBeGreaterThan(Date.now() + 13 * DAY);

    // Making a license PERPETUAL drops the edition's validity; giving one explicitly is still an error.
    const bought = await issued({ editionId: editions.trial, licenseType: 'PERPETUAL' });
    expect(bought).toMatchObject({ type: 'PERPETUAL', expiresAt: null });

    // A subscription on a perpetual edition needs a date, and gets it.
    const sub = await issued({ editionId: editions.perpetual, licenseType: 'SUBSCRIPTION', expiresAt: until.toISOString() });
    expect(sub).toMatchObject({ type: 'SUBSCRIPTION', expiresAt: until.toISOString() });

    const starts = new Date(Date.now() + 10 * DAY);
    const future = await issued({ editionId: editions.pro, startsAt: starts.toISOString() });
    expect(new Date(future.expiresAt!).getTime()).toBe(starts.getTime() + 365 * DAY);
  });

  const invalid: [string, () => Record<string, unknown>, string[]][] = [
    ['expiresAt in the past', () => ({ editionId: editions.pro, expiresAt: new Date(Date.now() - DAY).toISOString() }), ['expiresAt']],
    ['both validityDays and expiresAt', () => ({ editionId: editions.pro, validityDays: 10, expiresAt: new Date(Date.now() + DAY).toISOString() }), ['expiresAt']],
    ['a PERPETUAL license with a validity', () => ({ editionId: editions.perpetual, validityDays: 10 }), ['licenseType', 'validityDays']],
    ['a PERPETUAL override with a validity', () => ({ editionId: editions.trial, licenseType: 'PERPETUAL', validityDays: 10 }), ['licenseType', 'validityDays']],
    ['a SUBSCRIPTION without an expiry', () => ({ editionId: editions.perpetual, licenseType: 'SUBSCRIPTION' }), ['expiresAt']],
    ['expiry before start', () => ({ editionId: editions.perpetual, licenseType: 'SUBSCRIPTION', startsAt: new Date(Date.now() + 9 * DAY).toISOString(), expiresAt: new Date(Date.now() + 2 * DAY).toISOString() }), ['expiresAt']],
    ['zero validity days', () => ({ editionId: editions.pro, validityDays: 0 }), ['validityDays']],
    ['an unknown feature override', () => ({ editionId: editions.pro, features: ['export', 'teleport'] }), ['features.1']],
    ['an unknown meter override', () => ({ editionId: editions.pro, meters: [{ meter: 'nope', quota: 1, period: 'DAY' }] }), ['meters.0.meter']],
    ['negative numbers', () => ({ editionId: editions.pro, maxActivations: -1, goodwillActivations: -1 }), ['goodwillActivations', 'maxActivations']],
    ['seats on a NAMED license', () => ({ editionId: editions.pro, seats: 3 }), ['seats']],
    ['goodwill without a cap', () => ({ editionId: editions.perpetual, maxActivations: null, goodwillActivations: 1 }), ['goodwillActivations']],
    ['a bad semver range', () => ({ editionId: editions.pro, allowedVersions: '>>>2' }), ['allowedVersions']],
    ['a negative tokenCount', () => ({ editionId: editions.pro, tokenCount: -1 }), ['tokenCount']],
    ['too many token keys', () => ({ editionId: editions.pro, tokenCount: 1001 }), ['tokenCount']],
    ['a 10 KB name', () => ({ editionId: editions.pro, name: 'n'.repeat(10_240) }), ['name']],
    ['oversized metadata', () => ({ editionId: editions.pro, metadata: { blob: 'x'.repeat(20_000) } }), ['metadata']],
    ['a malformed edition id', () => ({ editionId: 'edition-1' }), ['editionId']],
    ['a malformed customer id', () => ({ editionId: editions.pro, customerId: "1' OR 1=1 --" }), ['customerId']],
    ['a customer id given as an edition id', () => ({ editionId: customerId }), ['editionId']],
  ];
  it.each(invalid)('rejects %s with ValidationError and writes nothing', async (_what, input, expected) => {
    const before = await counts();
    const r = await create(input());
    expect(r.__typename, JSON.stringify(r)).toBe('ValidationError');
    expect(paths(r)).toEqual(expected);
    expect(await counts()).toEqual(before);
  });

  it('an unknown edition or customer is NotFoundError and writes nothing', async () => {
    const before = await counts();
    expect((await create({ editionId: '7d3f2c9a-2b4e-4c1a-9f1e-0a1b2c3d4e5f' })).__typename).toBe('NotFoundError');
    expect((await create({ editionId: editions.pro, customerId: '7d3f2c9a-2b4e-4c1a-9f1e-0a1b2c3d4e5f' })).__typename).toBe('NotFoundError');
    expect(await counts()).toEqual(before);
  });
});

describe('lifecycle', () => {
  it('suspend / reinstate / revoke; illegal transitions are ConflictError; revoke is final', async () => {
    const l = await issued({ editionId: editions.perpetual });
    const run = async (op: 'suspendLicense' | 'reinstateLicense' | 'revokeLicense') => (await gqlOk(transition(op), { id: l.id }))[op];

    expect(await run('reinstateLicense')).toMatchObject({ __typename: 'ConflictError' });
    expect(await run('suspendLicense')).toMatchObject({ __typename: 'License', status: 'SUSPENDED' });
    expect((await s.db.prisma.license.findUniqueOrThrow({ where: { id: dbId(l.id) } })).suspendedAt).not.toBeNull();
    expect(await run('suspendLicense')).toMatchObject({ __typename: 'ConflictError' });
    expect(await run('reinstateLicense')).toMatchObject({ __typename: 'License', status: 'ACTIVE' });
    expect(await run('suspendLicense')).toMatchObject({ status: 'SUSPENDED' });
    expect(await run('revokeLicense')).toMatchObject({ __typename: 'License', status: 'REVOKED' });

    const before = await counts();
    for (const op of ['suspendLicense', 'reinstateLicense', 'revokeLicense'] as const) {
      expect(await run(op)).toMatchObject({ __typename: 'ConflictError' });
    }
    const update = (await gqlOk(UPDATE_LICENSE, { input: { licenseId: l.id, maxActivations: 9 } })).updateLicense;
    expect(update.__typename).toBe('ConflictError');
    const renew = (await gqlOk(RENEW_LICENSE, { input: { licenseId: l.id, licenseType: 'SUBSCRIPTION', extendDays: 30 } })).renewLicense;
    expect(renew.__typename).toBe('ConflictError');
    expect(await counts()).toEqual(before);
    const row = await s.db.prisma.license.findUniqueOrThrow({ where: { id: dbId(l.id) } });
    expect(row).toMatchObject({ state: 'REVOKED', maxActivations: 2, type: 'PERPETUAL' });

    const events = await s.db.prisma.auditEvent.findMany({ where: { licenseId: row.id }, orderBy: { occurredAt: 'asc' } });
    expect(events.map((e) => e.type)).toEqual([
      'license.created',
      'license.suspended',
      'license.reinstated',
      'license.suspended',
      'license.revoked',
    ]);
  });

  it('transitions on unknown or malformed ids are typed errors', async () => {
    expect((await gqlOk(transition('suspendLicense'), { id: '7d3f2c9a-2b4e-4c1a-9f1e-0a1b2c3d4e5f' })).suspendLicense.__typename).toBe('NotFoundError');
    expect((await gqlOk(transition('suspendLicense'), { id: 'x'.repeat(10_000) })).suspendLicense.__typename).toBe('ValidationError');
    expect((await gqlOk(transition('revokeLicense'), { id: productId })).revokeLicense.__typename).toBe('ValidationError');
  });

  it('updateLicense bumps the revision; PENDING_SYNC only with ACTIVE activations', async () => {
    const l = await issued({ editionId: editions.pro });
    const u1 = (await gqlOk(UPDATE_LICENSE, { input: { licenseId: l.id, maxActivations: 5, features: ['export', 'plugins'] } })).updateLicense;
    expect(u1).toMatchObject({ __typename: 'License', revision: 2, syncState: 'SYNCED', maxActivations: 5, features: ['export', 'plugins'] });

    // Released or inactive devices need not hear of it.
    await addActivation(l.id, 'RELEASED');
    await addActivation(l.id, 'INACTIVE');
    const u2 = (await gqlOk(UPDATE_LICENSE, { input: { licenseId: l.id, maxActivations: 6 } })).updateLicense;
    expect(u2).toMatchObject({ revision: 3, syncState: 'SYNCED' });

    await addActivation(l.id, 'ACTIVE');
    const u3 = (await gqlOk(UPDATE_LICENSE, { input: { licenseId: l.id, allowedVersions: '>=1.0.0' } })).updateLicense;
    expect(u3).toMatchObject({ revision: 4, syncState: 'PENDING_SYNC', allowedVersions: '>=1.0.0' });

    // Nothing changed: no new revision, no event.
    const events = await s.db.prisma.auditEvent.count();
    const same = (await gqlOk(UPDATE_LICENSE, { input: { licenseId: l.id, maxActivations: 6 } })).updateLicense;
    expect(same).toMatchObject({ __typename: 'License', revision: 4 });
    expect(await s.db.prisma.auditEvent.count()).toBe(events);

    const updated = await s.db.prisma.auditEvent.findFirstOrThrow({ where: { licenseId: dbId(l.id), type: 'license.updated' }, orderBy: { occurredAt: 'desc' } });
    expect(updated.payload).toMatchObject({ revision: 4, changes: { allowedVersions: { from: null, to: '>=1.0.0' } } });
  });

  it('updateLicense rejects bad terms, unknown customers and caps below the devices held, changing nothing', async () => {
    const l = await issued({ editionId: editions.pro, customerId });
    const snapshot = async () => {
      const row = await s.db.prisma.license.findUniqueOrThrow({ where: { id: dbId(l.id) } });
      return { ...(await counts()), revision: row.revision, maxActivations: row.maxActivations, features: row.features, customerId: row.customerId };
    };
    const before = await snapshot();
    const cases: [Record<string, unknown>, string, string[]?][] = [
      [{ goodwillActivations: 2, maxActivations: null }, 'ValidationError', ['goodwillActivations']],
      [{ features: ['teleport'] }, 'ValidationError', ['features.0']],
      [{ seats: 4 }, 'ValidationError', ['seats']],
      [{ maxActivations: -3 }, 'ValidationError', ['maxActivations']],
      [{ expiresAt: new Date(Date.now() - DAY).toISOString() }, 'ValidationError', ['expiresAt']],
      [{ name: 'n'.repeat(10_240) }, 'ValidationError', ['name']],
      [{ customerId: 'nope' }, 'ValidationError', ['customerId']],
      [{ customerId: '7d3f2c9a-2b4e-4c1a-9f1e-0a1b2c3d4e5f' }, 'NotFoundError'],
    ];
    for (const [input, typename, fieldPaths] of cases) {
      const r = (await gqlOk(UPDATE_LICENSE, { input: { licenseId: l.id, ...input } })).updateLicense;
      expect(r.__typename, JSON.stringify(input).slice(0, 80)).toBe(typename);
      if (fieldPaths) expect(paths(r)).toEqual(fieldPaths);
    }
    expect(await snapshot()).toEqual(before);

    await s.db.prisma.license.update({ where: { id: dbId(l.id) }, data: { activationsUsed: 3 } });
    const lower = (await gqlOk(UPDATE_LICENSE, { input: { licenseId: l.id, maxActivations: 2 } })).updateLicense;
    expect(lower.__typename).toBe('ConflictError');
    const withGoodwill = (await gqlOk(UPDATE_LICENSE, { input: { licenseId: l.id, maxActivations: 2, goodwillActivations: 1 } })).updateLicense;
    expect(withGoodwill).toMatchObject({ __typename: 'License', maxActivations: 2, goodwillActivations: 1 });
  });

  it('updateLicense keeps a license type and its expiry consistent', async () => {
    const perpetual = await issued({ editionId: editions.perpetual });
    const r = (await gqlOk(UPDATE_LICENSE, { input: { licenseId: perpetual.id, expiresAt: new Date(Date.now() + 5 * DAY).toISOString() } })).updateLicense;
    expect(r.__typename).toBe('ValidationError');
    const sub = await issued({ editionId: editions.pro });
    const cleared = (await gqlOk(UPDATE_LICENSE, { input: { licenseId: sub.id, expiresAt: null } })).updateLicense;
    expect(cleared.__typename).toBe('ValidationError');
    const row = await s.db.prisma.license.findUniqueOrThrow({ where: { id: dbId(sub.id) } });
    expect(row.expiresAt).not.toBeNull();
    expect(row.revision).toBe(1);
  });

  it('renewLicense extends from the current expiry and bumps the revision', async () => {
    const l = await issued({ editionId: editions.pro });
    const r = (await gqlOk(RENEW_LICENSE, { input: { licenseId: l.id, extendDays: 30 } })).renewLicense;
    expect(r).toMatchObject({ __typename: 'License', revision: 2, syncState: 'SYNCED', type: 'SUBSCRIPTION' });
    expect(new Date(r.expiresAt).getTime()).toBe(new Date(l.expiresAt!).getTime() + 30 * DAY);

    // A lapsed license is extended from now, not from its old expiry.
    await s.db.prisma.license.update({ where: { id: dbId(l.id) }, data: { expiresAt: new Date(Date.now() - 100 * DAY) } });
    const lapsed = (await gqlOk(LICENSES, { search: l.key, first: 1 })).licenses.edges[0].node;
    expect(lapsed.status).toBe('EXPIRED');
    const before = Date.now();
    const again = (await gqlOk(RENEW_LICENSE, { input: { licenseId: l.id, extendDays: 10 } })).renewLicense;
    expect(again).toMatchObject({ revision: 3, status: 'ACTIVE' });
    expect(new Date(again.expiresAt).getTime()).toBeGreaterThanOrEqual(before + 10 * DAY);
    expect(new Date(again.expiresAt).getTime()).toBeLessThanOrEqual(Date.now() + 10 * DAY);

    const until = new Date(Date.now() + 400 * DAY);
    until.setMilliseconds(0);
    await addActivation(l.id);
    const dated = (await gqlOk(RENEW_LICENSE, { input: { licenseId: l.id, expiresAt: until.toISOString() } })).renewLicense;
    expect(dated).toMatchObject({ revision: 4, syncState: 'PENDING_SYNC', expiresAt: until.toISOString() });
    const renewed = await s.db.prisma.auditEvent.count({ where: { licenseId: dbId(l.id), type: 'license.renewed' } });
    expect(renewed).toBe(3);
  });

  it('renewLicense converts a TRIAL to a SUBSCRIPTION', async () => {
    const trial = await issued({ editionId: editions.trial });
    const r = (await gqlOk(RENEW_LICENSE, { input: { licenseId: trial.id, licenseType: 'SUBSCRIPTION', extendDays: 365 } })).renewLicense;
    expect(r).toMatchObject({ __typename: 'License', type: 'SUBSCRIPTION', revision: 2 });
    expect(new Date(r.expiresAt).getTime()).toBe(new Date(trial.expiresAt!).getTime() + 365 * DAY);

    const toPerpetual = (await gqlOk(RENEW_LICENSE, { input: { licenseId: trial.id, licenseType: 'PERPETUAL' } })).renewLicense;
    expect(toPerpetual).toMatchObject({ type: 'PERPETUAL', expiresAt: null, revision: 3 });
  });

  it('renewLicense to NODE_LOCKED binds an uncapped license to one device, and refuses while more devices hold it', async () => {
    const l = await issued({ editionId: editions.pro, maxActivations: null });
    expect(l.maxActivations).toBeNull();
    const locked = (await gqlOk(RENEW_LICENSE, { input: { licenseId: l.id, licenseType: 'NODE_LOCKED' } })).renewLicense;
    expect(locked).toMatchObject({ __typename: 'License', type: 'NODE_LOCKED', maxActivations: 1, revision: 2 });

    const busy = await issued({ editionId: editions.pro, maxActivations: null });
    await s.db.prisma.license.update({ where: { id: dbId(busy.id) }, data: { activationsUsed: 2 } });
    const events = await s.db.prisma.auditEvent.count();
    const refused = (await gqlOk(RENEW_LICENSE, { input: { licenseId: busy.id, licenseType: 'NODE_LOCKED' } })).renewLicense;
    expect(refused.__typename).toBe('ConflictError');
    const row = await s.db.prisma.license.findUniqueOrThrow({ where: { id: dbId(busy.id) } });
    expect({ type: row.type, maxActivations: row.maxActivations, revision: row.revision }).toEqual({ type: 'SUBSCRIPTION', maxActivations: null, revision: 1 });
    expect(await s.db.prisma.auditEvent.count()).toBe(events);
  });

  it('renewLicense refuses an expiry at or before the license start', async () => {
    const start = new Date(Date.now() + 100 * DAY);
    const l = await issued({ editionId: editions.pro, startsAt: start.toISOString() });
    for (const input of [{ expiresAt: new Date(Date.now() + 10 * DAY).toISOString() }, { expiresAt: start.toISOString() }]) {
      const r = (await gqlOk(RENEW_LICENSE, { input: { licenseId: l.id, ...input } })).renewLicense;
      expect(r.__typename, JSON.stringify(input)).toBe('ValidationError');
      expect(paths(r)).toEqual(['expiresAt']);
    }
    const row = await s.db.prisma.license.findUniqueOrThrow({ where: { id: dbId(l.id) } });
    expect(row.expiresAt!.toISOString()).toBe(l.expiresAt);
    expect(row.revision).toBe(1);
    const later = new Date(start.getTime() + 30 * DAY);
    later.setMilliseconds(0);
    const ok2 = (await gqlOk(RENEW_LICENSE, { input: { licenseId: l.id, expiresAt: later.toISOString() } })).renewLicense;
    expect(ok2).toMatchObject({ __typename: 'License', expiresAt: later.toISOString() });
  });

  it('an expiry past the last storable date (9999-12-31) is a ValidationError, not an internal error', async () => {
    const before = await counts();
    const far = (await s.gql(CREATE_LICENSE, { input: { editionId: editions.pro, startsAt: '9999-06-01T00:00:00Z' } }, { token })).data?.createLicense;
    expect(far?.__typename).toBe('ValidationError');
    expect(paths(far)).toEqual(['expiresAt']);
    expect(await counts()).toEqual(before);

    const l = await issued({ editionId: editions.pro });
    const end = '9999-12-01T00:00:00.000Z';
    expect((await gqlOk(RENEW_LICENSE, { input: { licenseId: l.id, expiresAt: end } })).renewLicense).toMatchObject({ __typename: 'License', expiresAt: end });
    const r = await s.gql(RENEW_LICENSE, { input: { licenseId: l.id, extendDays: 365 } }, { token });
    expect(r.errors).toBeUndefined();
    expect(r.data.renewLicense.__typename).toBe('ValidationError');
    expect(paths(r.data.renewLicense)).toEqual(['extendDays']);
    const row = await s.db.prisma.license.findUniqueOrThrow({ where: { id: dbId(l.id) } });
    expect({ expiresAt: row.expiresAt!.toISOString(), revision: row.revision }).toEqual({ expiresAt: end, revision: 2 });
  });

  it('renewLicense rejects bad input without changing anything', async () => {
    const l = await issued({ editionId: editions.pro });
    const snapshot = async () => {
      const row = await s.db.prisma.license.findUniqueOrThrow({ where: { id: dbId(l.id) } });
      return { events: await s.db.prisma.auditEvent.count(), revision: row.revision, expiresAt: row.expiresAt, type: row.type };
    };
    const before = await snapshot();
    const cases: [Record<string, unknown>, string][] = [
      [{}, 'ValidationError'],
      [{ extendDays: 10, expiresAt: new Date(Date.now() + 50 * DAY).toISOString() }, 'ValidationError'],
      [{ extendDays: 0 }, 'ValidationError'],
      [{ extendDays: -5 }, 'ValidationError'],
      [{ expiresAt: new Date(Date.now() - DAY).toISOString() }, 'ValidationError'],
      [{ licenseType: 'FLOATING' }, 'ValidationError'],
      [{ licenseType: 'NODE_LOCKED' }, 'ValidationError'],
    ];
    for (const [input, typename] of cases) {
      const r = (await gqlOk(RENEW_LICENSE, { input: { licenseId: l.id, ...input } })).renewLicense;
      expect(r.__typename, JSON.stringify(input)).toBe(typename);
    }
    const perpetual = await issued({ editionId: editions.perpetual });
    const noExpiry = (await gqlOk(RENEW_LICENSE, { input: { licenseId: perpetual.id, extendDays: 30 } })).renewLicense;
    expect(noExpiry.__typename).toBe('ValidationError');
    expect((await s.db.prisma.license.findUniqueOrThrow({ where: { id: dbId(perpetual.id) } })).revision).toBe(1);
    expect({ ...(await snapshot()), events: before.events }).toEqual(before);
  });
});

describe('licenses query', () => {
  let t: string;
  const made: Record<string, { id: string; key: string }> = {};
  let otherProductId: string;
  let acme: string;
  let globex: string;

  beforeAll(async () => {
    // A tenant of its own, so counts are exact.
    const tenant = await s.tenant();
    t = tenant.token;
    const product = async (code: string) => (await gqlOk(`mutation($c: String!) { createProduct(input: { name: $c, code: $c }) { ... on Product { id } } }`, { c: code }, t)).createProduct.id;
    const p1 = await product('alpha');
    otherProductId = await product('beta');
    const edition = async (pid: string, code: string, terms: Record<string, unknown>) =>
      (await gqlOk(`mutation($input: CreateEditionInput!) { createEdition(input: $input) { ... on Edition { id } } }`, { input: { productId: pid, name: code, code, ...terms } }, t)).createEdition.id;
    const e1 = await edition(p1, 'sub', { licenseType: 'SUBSCRIPTION', validityDays: 365 });
    const e2 = await edition(otherProductId, 'perp', { licenseType: 'PERPETUAL' });
    const customer = async (name: string, email: string) => (await gqlOk(`mutation($n: String!, $e: String) { createCustomer(input: { name: $n, email: $e }) { ... on Customer { id } } }`, { n: name, e: email }, t)).createCustomer.id;
    acme = await customer('Acme Rockets', 'ops@acme.example');
    globex = await customer('Globex', 'it@globex.example');
    const lic = async (name: string, input: Record<string, unknown>) => {
      const r = (await gqlOk(CREATE_LICENSE, { input: { name, ...input } }, t)).createLicense;
      expect(r.__typename).toBe('CreateLicensePayload');
      made[name] = r.license;
    };
    await lic('a-sub-1', { editionId: e1, customerId: acme });
    await lic('a-sub-soon', { editionId: e1, customerId: acme, expiresAt: new Date(Date.now() + 5 * DAY).toISOString() });
    await lic('a-sub-expired', { editionId: e1, customerId: globex });
    await lic('b-perp-1', { editionId: e2, customerId: globex });
    await lic('b-perp-suspended', { editionId: e2 });
    await lic('b-perp-revoked', { editionId: e2 });
    await lic('b-perp-plain', { editionId: e2 });
    await s.db.prisma.license.update({ where: { id: dbId(made['a-sub-expired']!.id) }, data: { expiresAt: new Date(Date.now() - DAY) } });
    await gqlOk(transition('suspendLicense'), { id: made['b-perp-suspended']!.id }, t);
    await gqlOk(transition('revokeLicense'), { id: made['b-perp-revoked']!.id }, t);
  });

  const names = (r: { edges: { node: { name: string } }[] }) => r.edges.map((e) => e.node.name).sort();

  it('filters by customer, product, status and expiry window', async () => {
    const q = async (vars: Record<string, unknown>) => (await gqlOk(LICENSES, { first: 50, ...vars }, t)).licenses;
    const all = await q({});
    expect(all.totalCount).toBe(7);
    expect(names(await q({ customerId: acme }))).toEqual(['a-sub-1', 'a-sub-soon']);
    expect(names(await q({ customerId: globex }))).toEqual(['a-sub-expired', 'b-perp-1']);
    const byProduct = await q({ productId: otherProductId });
    expect(byProduct.totalCount).toBe(4);
    expect(names(byProduct)).toEqual(['b-perp-1', 'b-perp-plain', 'b-perp-revoked', 'b-perp-suspended']);
    expect(names(await q({ status: 'ACTIVE' }))).toEqual(['a-sub-1', 'a-sub-soon', 'b-perp-1', 'b-perp-plain']);
    expect(names(await q({ status: 'EXPIRED' }))).toEqual(['a-sub-expired']);
    expect(names(await q({ status: 'SUSPENDED' }))).toEqual(['b-perp-suspended']);
    expect(names(await q({ status: 'REVOKED' }))).toEqual(['b-perp-revoked']);
    const soon = await q({ expiringWithinDays: 30 });
    expect(names(soon)).toEqual(['a-sub-soon']);
    expect(soon.totalCount).toBe(1);
    expect(names(await q({ expiringWithinDays: 400 }))).toEqual(['a-sub-1', 'a-sub-soon']);
    expect(names(await q({ customerId: acme, status: 'ACTIVE', expiringWithinDays: 30 }))).toEqual(['a-sub-soon']);
    const expired = all.edges.find((e: { node: { name: string } }) => e.node.name === 'a-sub-expired').node;
    expect(expired.status).toBe('EXPIRED');
  });

  it('searches by key (any case), license name and customer name or email', async () => {
    const q = async (search: string) => (await gqlOk(LICENSES, { first: 50, search }, t)).licenses;
    const key = made['b-perp-1']!.key;
    expect(names(await q(key.toLowerCase()))).toEqual(['b-perp-1']);
    expect(names(await q(` ${key} `))).toEqual(['b-perp-1']);
    expect(names(await q(key.slice(0, 9).toLowerCase()))).toEqual(['b-perp-1']);
    expect(names(await q('SUSPENDED'))).toEqual(['b-perp-suspended']);
    expect(names(await q('acme rock'))).toEqual(['a-sub-1', 'a-sub-soon']);
    expect(names(await q('globex.example'))).toEqual(['a-sub-expired', 'b-perp-1']);
    expect((await q('nothing like this')).totalCount).toBe(0);
    // LIKE wildcards are searched for literally.
    expect((await q('%')).totalCount).toBe(0);
    expect((await q('_')).totalCount).toBe(0);
    expect((await q('a_sub')).totalCount).toBe(0);
    expect(names(await q('a-sub-s'))).toEqual(['a-sub-soon']);
    expect((await q('x'.repeat(10_240))).totalCount).toBe(0);
  });

  it('finds a license by a device: its exact fingerprint or part of its host name, released devices too', async () => {
    const q = async (search: string) => (await gqlOk(LICENSES, { first: 50, search }, t)).licenses;
    const ACTIVATE = `mutation($input: ActivateInput!) { activate(input: $input) { __typename ... on ActivateSuccess { activation { id } } } }`;
    const on = async (license: string, fingerprint: string, hostname: string) => {
      const r = (await gqlOk(ACTIVATE, { input: { key: made[license]!.key, fingerprint, client: { hostname } } })).activate;
      expect(r.__typename).toBe('ActivateSuccess');
      return r.activation.id as string;
    };
    await on('a-sub-1', 'fp-7f3a9c-ws', 'CAD-WS-014.design.acme.example');
    const released = await on('b-perp-1', 'fp-b2e4d1-lt', 'globex-laptop-22');
    await gqlOk(`mutation($id: ID!) { releaseActivation(input: { activationId: $id }) { __typename } }`, { id: released }, t);
    expect(names(await q('fp-7f3a9c-ws'))).toEqual(['a-sub-1']);
    expect(names(await q('cad-ws-014'))).toEqual(['a-sub-1']);
    expect(names(await q('laptop-22'))).toEqual(['b-perp-1']);
    expect(names(await q('fp-b2e4d1-lt'))).toEqual(['b-perp-1']);
    // A fingerprint matches whole: part of one finds nothing (host names are searched for a part).
    expect((await q('fp-7f3a')).totalCount).toBe(0);
    // Another tenant's devices are not searched.
    const other = await s.tenant();
    expect((await gqlOk(LICENSES, { first: 5, search: 'fp-7f3a9c-ws' }, other.token)).licenses.totalCount).toBe(0);
  });

  it('paginates with first/after and keeps totalCount', async () => {
    const seen: string[] = [];
    let after: string | null = null;
    for (let page = 0; page < 5; page++) {
      const r: { totalCount: number; pageInfo: { hasNextPage: boolean; endCursor: string }; edges: { node: { name: string } }[] } = (
        await gqlOk(LICENSES, { first: 3, after }, t)
      ).licenses;
      expect(r.totalCount).toBe(7);
      seen.push(...r.edges.map((e) => e.node.name));
      if (!r.pageInfo.hasNextPage) break;
      after = r.pageInfo.endCursor;
    }
    expect(seen).toHaveLength(7);
    expect(new Set(seen).size).toBe(7);
    const filtered = (await gqlOk(LICENSES, { first: 1, productId: otherProductId }, t)).licenses;
    expect(filtered).toMatchObject({ totalCount: 4, pageInfo: { hasNextPage: true } });
    expect(filtered.edges).toHaveLength(1);
  });

  it('expiringWithinDays leaves out revoked licenses, as the expiring-soon alerts do', async () => {
    const own = await s.tenant();
    const pid = (await gqlOk(`mutation { createProduct(input: { name: "Gamma", code: "gamma" }) { ... on Product { id } } }`, {}, own.token)).createProduct.id;
    const eid = (await gqlOk(`mutation($input: CreateEditionInput!) { createEdition(input: $input) { ... on Edition { id } } }`, { input: { productId: pid, name: 's', code: 's', licenseType: 'SUBSCRIPTION', validityDays: 10 } }, own.token)).createEdition.id;
    const ids: Record<string, string> = {};
    for (const name of ['renew me', 'suspended', 'revoked']) {
      ids[name] = (await gqlOk(CREATE_LICENSE, { input: { editionId: eid, name } }, own.token)).createLicense.license.id;
    }
    await gqlOk(transition('suspendLicense'), { id: ids.suspended }, own.token);
    await gqlOk(transition('revokeLicense'), { id: ids.revoked }, own.token);
    const soon = (await gqlOk(LICENSES, { first: 10, expiringWithinDays: 30 }, own.token)).licenses;
    expect(soon.totalCount).toBe(2);
    expect(names(soon)).toEqual(['renew me', 'suspended']);
  });

  it('malformed filters are errors, not empty results', async () => {
    for (const vars of [{ customerId: 'nope' }, { productId: acme }, { expiringWithinDays: -1 }]) {
      const r = await s.gql(LICENSES, { first: 5, ...vars }, { token: t });
      expect(r.errors?.[0]?.extensions?.code, JSON.stringify(vars)).toBe('BAD_USER_INPUT');
    }
    const b64 = (text: string) => Buffer.from(text).toString('base64');
    for (const after of ['zzz', b64('GPC:S:x'), b64('GPC:S:not-a-uuid'), b64('GPC:J:[1,2]'), b64(`GPC:S:${'9'.repeat(10_000)}`)]) {
      for (const q of [LICENSES, `query($after: String) { customers(first: 2, after: $after) { edges { cursor } } }`]) {
        const r = await s.gql(q, { first: 2, after }, { token: t });
        // Refused as bad input (Pothos' own "Invalid cursor" or ours), never a masked internal error.
        expect(r.errors?.[0]?.message, after.slice(0, 20)).toMatch(/cursor/i);
        expect(r.errors?.[0]?.extensions?.code).not.toBe('INTERNAL_SERVER_ERROR');
      }
    }
    // Page sizes are capped, not refused.
    const big = ok(await s.gql(LICENSES, { first: 100_000 }, { token: t }));
    expect(big.licenses.edges).toHaveLength(7);
  });
});

describe('tenant isolation', () => {
  let other: { id: string; token: string };
  let mine: { id: string; key: string };

  beforeAll(async () => {
    other = await s.tenant();
    mine = await issued({ editionId: editions.pro, customerId, name: 'isolated' });
  });

  it("never shows one tenant's data to another", async () => {
    const t = other.token;
    for (const id of [mine.id, productId, customerId, editions.pro!]) {
      expect((await gqlOk(`query($id: ID!) { node(id: $id) { id } }`, { id }, t)).node).toBeNull();
    }
    expect((await gqlOk(`query($ids: [ID!]!) { nodes(ids: $ids) { id } }`, { ids: [mine.id, productId] }, t)).nodes).toEqual([null, null]);
    // Malformed ids are refused as bad input, not run into SQL.
    const b64 = (text: string) => Buffer.from(text).toString('base64');
    for (const id of [b64('License:not-a-uuid'), b64('Product:1'), b64(`Customer:${'x'.repeat(10_000)}`), b64('ApiToken:1')]) {
      const r = await s.gql(`query($id: ID!) { node(id: $id) { id } }`, { id }, { token: t });
      expect(r.errors?.[0]?.extensions?.code, id.slice(0, 20)).toBe('BAD_USER_INPUT');
    }
    const lists = await gqlOk(`{ products { id } customers(first: 50) { edges { node { id } } } licenses(first: 50) { totalCount edges { node { id } } } }`, {}, t);
    expect(lists.products).toEqual([]);
    expect(lists.customers.edges).toEqual([]);
    expect(lists.licenses).toEqual({ totalCount: 0, edges: [] });
    expect((await gqlOk(LICENSES, { first: 5, search: mine.key }, t)).licenses.totalCount).toBe(0);
    expect((await gqlOk(LICENSES, { first: 5, customerId }, t)).licenses.totalCount).toBe(0);
    expect((await gqlOk(`query($k: String!) { licenseByKey(key: $k) { id } }`, { k: mine.key }, t)).licenseByKey).toBeNull();
    // Its own view still works.
    expect((await gqlOk(`query($k: String!) { licenseByKey(key: $k) { id } }`, { k: mine.key.toLowerCase() })).licenseByKey.id).toBe(mine.id);
    // A mistyped key (its checksum broken) or no key at all names no license, whatever the selection reads
    // (the console's offline page asks for its customer and product).
    const byKey = `query($k: String!) { licenseByKey(key: $k) { id customer { name } product { name } } }`;
    const typo = `${mine.key.slice(0, -1)}${mine.key.endsWith('A') ? 'B' : 'A'}`;
    for (const k of [typo, 'not a key']) expect((await gqlOk(byKey, { k })).licenseByKey, k).toBeNull();
    expect((await gqlOk(byKey, { k: mine.key })).licenseByKey.id).toBe(mine.id);
    expect((await gqlOk(`query($id: ID!) { node(id: $id) { ... on License { key } } }`, { id: mine.id })).node.key).toBe(mine.key);
  });

  it("cannot change another tenant's data", async () => {
    const t = other.token;
    const before = await s.db.prisma.license.findUniqueOrThrow({ where: { id: dbId(mine.id) } });
    const counted = await counts();
    expect((await gqlOk(UPDATE_LICENSE, { input: { licenseId: mine.id, maxActivations: 99 } }, t)).updateLicense.__typename).toBe('NotFoundError');
    expect((await gqlOk(RENEW_LICENSE, { input: { licenseId: mine.id, extendDays: 99 } }, t)).renewLicense.__typename).toBe('NotFoundError');
    for (const op of ['suspendLicense', 'revokeLicense'] as const) {
      expect((await gqlOk(transition(op), { id: mine.id }, t))[op].__typename).toBe('NotFoundError');
    }
    expect((await create({ editionId: editions.pro }, t)).__typename).toBe('NotFoundError');
    const theirCustomer = (await gqlOk(`mutation { createCustomer(input: { name: "Theirs" }) { ... on Customer { id } } }`, {}, t)).createCustomer.id;
    expect((await gqlOk(UPDATE_LICENSE, { input: { licenseId: mine.id, customerId: theirCustomer } })).updateLicense.__typename).toBe('NotFoundError');
    expect((await create({ editionId: editions.pro, customerId: theirCustomer })).__typename).toBe('NotFoundError');
    const otherEdition = await gqlOk(
      `mutation { createProduct(input: { name: "Own", code: "own" }) { ... on Product { id } } }`,
      {},
      t,
    );
    const ownEdition = (
      await gqlOk(
        `mutation($input: CreateEditionInput!) { createEdition(input: $input) { ... on Edition { id } } }`,
        { input: { productId: otherEdition.createProduct.id, name: 'E', code: 'e', licenseType: 'PERPETUAL' } },
        t,
      )
    ).createEdition.id;
    // Its own edition with my customer.
    expect((await create({ editionId: ownEdition, customerId }, t)).__typename).toBe('NotFoundError');
    const intoMine = await gqlOk(
      `mutation($input: CreateEditionInput!) { createEdition(input: $input) { __typename } }`,
      { input: { productId, name: 'Sneaky', code: 'sneaky', licenseType: 'PERPETUAL' } },
      t,
    );
    expect(intoMine.createEdition.__typename).toBe('NotFoundError');
    const feature = await gqlOk(`mutation($input: CreateFeatureInput!) { createFeature(input: $input) { __typename } }`, { input: { productId, code: 'sneaky', name: 'S' } }, t);
    expect(feature.createFeature.__typename).toBe('NotFoundError');
    const after = await s.db.prisma.license.findUniqueOrThrow({ where: { id: dbId(mine.id) } });
    expect(after).toEqual(before);
    expect(await s.db.prisma.edition.count({ where: { code: 'sneaky' } })).toBe(0);
    expect(await s.db.prisma.feature.count({ where: { code: 'sneaky' } })).toBe(0);
    expect((await counts()).licenses).toBe(counted.licenses);
  });
});

describe('concurrent changes to one license', () => {
  it('10 concurrent suspends: exactly one succeeds, the rest ConflictError, one event', async () => {
    const l = await issued({ editionId: editions.perpetual });
    const results = await Promise.all(Array.from({ length: 10 }, () => s.gql(transition('suspendLicense'), { id: l.id }, { token })));
    const kinds = results.map((r) => ok(r).suspendLicense.__typename);
    expect(kinds.filter((k) => k === 'License')).toHaveLength(1);
    expect(kinds.filter((k) => k === 'ConflictError')).toHaveLength(9);
    expect(await s.db.prisma.auditEvent.count({ where: { licenseId: dbId(l.id), type: 'license.suspended' } })).toBe(1);
  });

  it('20 concurrent updates each bump the revision once (no lost update)', async () => {
    const l = await issued({ editionId: editions.pro });
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => s.gql(UPDATE_LICENSE, { input: { licenseId: l.id, maxActivations: 100 + i } }, { token })),
    );
    for (const r of results) expect(ok(r).updateLicense.__typename).toBe('License');
    const row = await s.db.prisma.license.findUniqueOrThrow({ where: { id: dbId(l.id) } });
    expect(row.revision).toBe(21);
    // Each change is recorded with the revision it produced (the resolver re-reads the row after commit).
    const events = await s.db.prisma.auditEvent.findMany({ where: { licenseId: row.id, type: 'license.updated' } });
    const revisions = events.map((e) => (e.payload as { revision: number }).revision).sort((a, b) => a - b);
    expect(revisions).toEqual(Array.from({ length: 20 }, (_, i) => i + 2));
  });

  it('a revoke racing renewals: the license ends revoked and no renewal lands after it', async () => {
    const l = await issued({ editionId: editions.pro });
    const ops = [
      s.gql(transition('revokeLicense'), { id: l.id }, { token }),
      ...Array.from({ length: 8 }, () => s.gql(RENEW_LICENSE, { input: { licenseId: l.id, extendDays: 1 } }, { token })),
    ];
    const results = await Promise.all(ops);
    expect(ok(results[0]!).revokeLicense.__typename).toBe('License');
    const renewed = results.slice(1).filter((r) => ok(r).renewLicense.__typename === 'License').length;
    for (const r of results.slice(1)) expect(['License', 'ConflictError']).toContain(ok(r).renewLicense.__typename);
    const row = await s.db.prisma.license.findUniqueOrThrow({ where: { id: dbId(l.id) } });
    expect(row.state).toBe('REVOKED');
    expect(row.revision).toBe(1 + renewed);
  });
});
