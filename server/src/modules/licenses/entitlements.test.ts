import { decodeGlobalID } from '@pothos/plugin-relay';
import { createLocalJWKSet, decodeJwt, type JSONWebKeySet, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient } from '../../../../sdk/src/client.ts';
import { isEntitled, limitOf } from '../../../../sdk/src/entitlements.ts';
import { memoryStorage } from '../../../../sdk/src/storage.ts';
import { ok, startTestServer, type TestServer } from '../../../test/harness.ts';
import { activateDevice, heartbeatDevice, license as issueLicense, product } from '../activation/fixtures.ts';

// Numeric entitlements (projects = 10) beside on/off features: edition -> license -> override ->
// validateLicense with a quantity -> signed token and license file -> the SDK.

let s: TestServer;
let token: string;
let slug: string;
let productId: string;
let editionId: string;

const ENTITLEMENTS = 'entitlements { feature limit }';
const CREATE_EDITION = `mutation($input: CreateEditionInput!) { createEdition(input: $input) {
  __typename ... on Edition { id features ${ENTITLEMENTS} } ... on ValidationError { fields { path message } } ... on Error { message } } }`;
const LICENSE = `query($id: ID!) { node(id: $id) { ... on License { revision syncState features ${ENTITLEMENTS} } } }`;
const UPDATE = `mutation($input: UpdateLicenseInput!) { updateLicense(input: $input) {
  __typename ... on License { revision syncState features ${ENTITLEMENTS} } ... on ValidationError { fields { path message } } ... on Error { message } } }`;
const CREATE_LICENSE = `mutation($input: CreateLicenseInput!) { createLicense(input: $input) {
  __typename ... on CreateLicensePayload { license { id ${ENTITLEMENTS} } } ... on ValidationError { fields { path message } } ... on Error { message } } }`;
const VALIDATE = `query($input: ValidateInput!) { validateLicense(input: $input) { valid code license { features ${ENTITLEMENTS} } } }`;
const ISSUE_OFFLINE = `mutation($input: IssueOfflineLicenseInput!) { issueOfflineLicense(input: $input) {
  __typename ... on OfflineLicensePayload { licenseFile } ... on Error { message } } }`;
const IMPORT = `mutation($input: ImportLicensesInput!) { importLicenses(input: $input) {
  __typename ... on ImportLicensesPayload { licenses { name ${ENTITLEMENTS} } } ... on ImportError { rows { line message } } ... on Error { message } } }`;

const gql = async (query: string, variables: Record<string, unknown> = {}) => ok(await s.gql(query, variables, { token }));
const validate = async (input: Record<string, unknown>) => (await gql(VALIDATE, { input })).validateLicense;
const licenseNode = async (globalId: string) => (await gql(LICENSE, { id: globalId })).node;
const counts = async () => ({
  editions: await s.db.prisma.edition.count(),
  licenses: await s.db.prisma.license.count(),
  events: await s.db.prisma.auditEvent.count(),
});

async function jwks(): Promise<JSONWebKeySet> {
  return (await (await s.fetch(`/.well-known/jwks.json?tenant=${slug}`)).json()) as JSONWebKeySet;
}

beforeAll(async () => {
  s = await startTestServer();
  ({ token, slug } = await s.tenant());
  productId = await product(s, token, ['export', 'projects', 'seats-per-project', 'api']);
  const r = await gql(CREATE_EDITION, {
    input: {
      productId,
      name: 'Team',
      code: 'team',
      licenseType: 'PERPETUAL',
      maxActivations: 3,
      heartbeatSeconds: 60,
      allowOffline: true,
      features: ['export'],
      entitlements: [
        { feature: 'projects', limit: 10 },
        { feature: 'seats-per-project', limit: 5 },
      ],
    },
  });
  expect(r.createEdition.__typename, JSON.stringify(r)).toBe('Edition');
  expect(r.createEdition.entitlements).toEqual([
    { feature: 'projects', limit: 10 },
    { feature: 'seats-per-project', limit: 5 },
  ]);
  editionId = r.createEdition.id;
});
afterAll(() => s.close());

describe('numeric entitlements', () => {
  it('a license inherits them from its edition, and an override replaces them', async () => {
    const inherited = await issueLicense(s, token, editionId);
    expect((await licenseNode(inherited.globalId)).entitlements).toEqual([
      { feature: 'projects', limit: 10 },
      { feature: 'seats-per-project', limit: 5 },
    ]);
    const r = await gql(CREATE_LICENSE, { input: { editionId, entitlements: [{ feature: 'projects', limit: 50 }] } });
    expect(r.createLicense.license.entitlements).toEqual([{ feature: 'projects', limit: 50 }]);
    // null means "not given", like features: the edition's stay.
    const r2 = await gql(CREATE_LICENSE, { input: { editionId, entitlements: null } });
    expect(r2.createLicense.license.entitlements).toHaveLength(2);
  });

  it('validateLicense: entitled when the limit is above 0, and with a quantity when it is at most the limit', async () => {
    const l = await issueLicense(s, token, editionId, { entitlements: [{ feature: 'projects', limit: 10 }, { feature: 'api', limit: 0 }] });
    expect(await validate({ key: l.key, feature: 'projects' })).toMatchObject({ valid: true, code: null, license: { entitlements: [{ feature: 'projects', limit: 10 }, { feature: 'api', limit: 0 }] } });
    expect(await validate({ key: l.key, feature: 'projects', quantity: 10 })).toMatchObject({ valid: true, code: null });
    expect(await validate({ key: l.key, feature: 'projects', quantity: 0 })).toMatchObject({ valid: true, code: null });
    expect(await validate({ key: l.key, feature: 'projects', quantity: 11 })).toMatchObject({ valid: false, code: 'FEATURE_NOT_ENTITLED' });
    // Limit 0: on record, entitles nothing.
    expect(await validate({ key: l.key, feature: 'api' })).toMatchObject({ valid: false, code: 'FEATURE_NOT_ENTITLED' });
    expect(await validate({ key: l.key, feature: 'api', quantity: 0 })).toMatchObject({ valid: false, code: 'FEATURE_NOT_ENTITLED' });
    // On/off features work as before; they have no limit, so any quantity passes.
    expect(await validate({ key: l.key, feature: 'export' })).toMatchObject({ valid: true });
    expect(await validate({ key: l.key, feature: 'export', quantity: 1000 })).toMatchObject({ valid: true });
    expect(await validate({ key: l.key, feature: 'seats-per-project' })).toMatchObject({ valid: false, code: 'FEATURE_NOT_ENTITLED' });
    expect(await validate({ key: l.key })).toMatchObject({ valid: true });
  });

  it('validateLicense refuses a quantity without a feature and a negative quantity', async () => {
    const l = await issueLicense(s, token, editionId);
    for (const input of [{ key: l.key, quantity: 2 }, { key: l.key, feature: 'projects', quantity: -1 }]) {
      const r = await s.gql(VALIDATE, { input });
      expect(r.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    }
  });

  it('updateLicense bumps the revision, marks PENDING_SYNC, and the next heartbeat carries a token with the new entitlements', async () => {
    const l = await issueLicense(s, token, editionId);
    const a = await activateDevice(s, { key: l.key, fingerprint: 'ent-device-1' });
    expect(a.__typename).toBe('ActivateSuccess');
    const keys = createLocalJWKSet(await jwks());
    const first = await jwtVerify(a.token, keys, { typ: 'tessera-activation+jwt', issuer: slug });
    expect(first.payload.entitlements).toEqual(expect.arrayContaining([{ feature: 'projects', limit: 10 }]));
    expect(first.payload.features).toEqual(['export']);

    // The same entitlements again is no change: no new revision.
    const same = await gql(UPDATE, { input: { licenseId: l.globalId, entitlements: [{ feature: 'projects', limit: 10 }, { feature: 'seats-per-project', limit: 5 }] } });
    expect(same.updateLicense).toMatchObject({ __typename: 'License', revision: 1, syncState: 'SYNCED' });

    const u = await gql(UPDATE, { input: { licenseId: l.globalId, entitlements: [{ feature: 'projects', limit: 25 }] } });
    expect(u.updateLicense).toMatchObject({ __typename: 'License', revision: 2, syncState: 'PENDING_SYNC', entitlements: [{ feature: 'projects', limit: 25 }] });
    const event = await s.db.prisma.auditEvent.findFirst({ where: { licenseId: l.id, type: 'license.updated' }, orderBy: { id: 'desc' } });
    expect(Object.keys((event?.payload as { changes: object }).changes)).toEqual(['entitlements']);

    const hb = await heartbeatDevice(s, { key: l.key, fingerprint: 'ent-device-1', revision: 1 });
    expect(hb).toMatchObject({ __typename: 'HeartbeatSuccess', updateAvailable: true });
    const next = await jwtVerify(hb.token, keys, { typ: 'tessera-activation+jwt', issuer: slug });
    expect(next.payload).toMatchObject({ revision: 2, entitlements: [{ feature: 'projects', limit: 25 }] });
    expect(await validate({ key: l.key, feature: 'projects', quantity: 25 })).toMatchObject({ valid: true });
    expect(await validate({ key: l.key, feature: 'seats-per-project' })).toMatchObject({ valid: false, code: 'FEATURE_NOT_ENTITLED' });
    expect((await licenseNode(l.globalId)).syncState).toBe('SYNCED');
  });

  it('bad input is a ValidationError with field paths, and changes nothing', async () => {
    const before = await counts();
    const bad: [unknown, string, RegExp][] = [
      [[{ feature: 'projects', limit: -1 }], 'entitlements.0.limit', /negative/],
      [[{ feature: 'projects', limit: 1 }, { feature: 'projects', limit: 2 }], 'entitlements.1.feature', /twice/],
      [[{ feature: '  ', limit: 1 }], 'entitlements.0.feature', /empty/],
      [[{ feature: 'x'.repeat(65), limit: 1 }], 'entitlements.0.feature', /64/],
      [[{ feature: 'nope', limit: 1 }], 'entitlements.0.feature', /unknown feature/],
      [[{ feature: 'export', limit: 3 }], 'entitlements.0.feature', /also an on\/off feature/],
      [Array.from({ length: 101 }, (_, i) => ({ feature: `f${i}`, limit: 1 })), 'entitlements', /at most 100/],
    ];
    for (const [entitlements, path, message] of bad) {
      const r = await gql(CREATE_EDITION, { input: { productId, name: 'Bad', code: 'bad', licenseType: 'PERPETUAL', features: ['export'], entitlements } });
      expect(r.createEdition.__typename, JSON.stringify(r)).toBe('ValidationError');
      expect(r.createEdition.fields).toContainEqual({ path, message: expect.stringMatching(message) });

      const c = await gql(CREATE_LICENSE, { input: { editionId, entitlements } });
      expect(c.createLicense.__typename).toBe('ValidationError');
      expect(c.createLicense.fields.map((f: { path: string }) => f.path)).toContain(path);
    }
    // Over 2^31-1 cannot even be sent as a GraphQL Int.
    const huge = await s.gql(CREATE_EDITION, { input: { productId, name: 'Bad', code: 'bad', licenseType: 'PERPETUAL', entitlements: [{ feature: 'projects', limit: 2 ** 31 }] } }, { token });
    expect(huge.errors?.length).toBeGreaterThan(0);
    expect(await counts()).toEqual(before);

    const l = await issueLicense(s, token, editionId);
    const mid = await counts();
    for (const [entitlements, path] of bad) {
      const r = await gql(UPDATE, { input: { licenseId: l.globalId, entitlements } });
      expect(r.updateLicense.__typename).toBe('ValidationError');
      expect(r.updateLicense.fields.map((f: { path: string }) => f.path)).toContain(path);
    }
    expect(await counts()).toEqual(mid);
    expect((await licenseNode(l.globalId)).revision).toBe(1);
    // Moving a feature from on/off to numeric in one update is fine.
    const moved = await gql(UPDATE, { input: { licenseId: l.globalId, features: [], entitlements: [{ feature: 'export', limit: 3 }] } });
    expect(moved.updateLicense).toMatchObject({ __typename: 'License', revision: 2, features: [], entitlements: [{ feature: 'export', limit: 3 }] });
  });

  it('CSV and JSONL imports set entitlements; a bad one fails its line', async () => {
    const csv = ['product,edition,name,features,entitlements', `${await productCode()},team,csv-1,,projects=3;api=7`].join('\n');
    const r = await gql(IMPORT, { input: { format: 'CSV', data: csv } });
    expect(r.importLicenses.__typename, JSON.stringify(r)).toBe('ImportLicensesPayload');
    expect(r.importLicenses.licenses[0].entitlements).toEqual([{ feature: 'projects', limit: 3 }, { feature: 'api', limit: 7 }]);

    const code = await productCode();
    const jsonl = JSON.stringify({ product: code, edition: 'team', name: 'jsonl-1', entitlements: [{ feature: 'projects', limit: 4 }] });
    const j = await gql(IMPORT, { input: { format: 'JSONL', data: jsonl } });
    expect(j.importLicenses.licenses[0].entitlements).toEqual([{ feature: 'projects', limit: 4 }]);

    const before = await counts();
    const badRows = [
      JSON.stringify({ product: code, edition: 'team', entitlements: [{ feature: 'projects', limit: 2 ** 31 }] }),
      JSON.stringify({ product: code, edition: 'team', entitlements: 'projects=many' }),
      JSON.stringify({ product: code, edition: 'team', entitlements: 'export=2' }),
      JSON.stringify({ product: code, edition: 'team', entitlements: 'projects=1' }),
    ].join('\n');
    const b = await gql(IMPORT, { input: { format: 'JSONL', data: badRows } });
    expect(b.importLicenses.__typename).toBe('ImportError');
    expect(b.importLicenses.rows.map((x: { line: number }) => x.line)).toEqual([1, 2, 3]);
    expect(b.importLicenses.rows[0].message).toBe('entitlements: entry 1, limit must be at most 2147483647');
    expect(await counts()).toEqual(before);
  });

  it('an offline license file carries them, and the SDK reads them after verifying it', async () => {
    const l = await issueLicense(s, token, editionId, { entitlements: [{ feature: 'projects', limit: 12 }] });
    const r = await gql(ISSUE_OFFLINE, { input: { licenseId: l.globalId, fingerprint: 'air-gapped-1' } });
    expect(r.issueOfflineLicense.__typename, JSON.stringify(r)).toBe('OfflineLicensePayload');
    const client = createClient({
      endpoint: 'http://127.0.0.1:9/graphql',
      tenant: slug,
      publicKeys: await jwks(),
      storage: memoryStorage(),
      device: { fingerprint: 'air-gapped-1', components: [] },
    });
    const verified = await client.installLicenseFile(r.issueOfflineLicense.licenseFile);
    expect(limitOf(verified, 'projects')).toBe(12);
    expect(isEntitled(verified, 'projects', 12)).toBe(true);
    expect(isEntitled(verified, 'projects', 13)).toBe(false);
    expect(isEntitled(verified, 'export')).toBe(true);
    expect(await client.limitOf('projects')).toBe(12);
    expect(await client.entitlement('export')).toBeNull();
    const file: string = r.issueOfflineLicense.licenseFile;
    expect(decodeJwt(file.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, '')).entitlements).toEqual([{ feature: 'projects', limit: 12 }]);
  });
});

async function productCode(): Promise<string> {
  const p = await s.db.prisma.product.findUniqueOrThrow({ where: { id: decodeGlobalID(productId).id } });
  return p.code;
}
