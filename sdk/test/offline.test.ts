import type { JSONWebKeySet } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ok, startTestServer, type TestServer } from '../../server/test/harness.ts';
import { createClient, type TesseraClient } from '../src/client.ts';
import { TesseraError } from '../src/errors.ts';
import { memoryStorage } from '../src/storage.ts';

// Air-gapped machines against a real server: request file -> license file -> deactivation file,
// the vendor's side done through the admin API.

let s: TestServer;
let slug: string;
let token: string;
let jwks: JSONWebKeySet;
let editionId: string;

const ISSUE = `mutation($input: IssueOfflineLicenseInput!) { issueOfflineLicense(input: $input) { __typename ... on OfflineLicensePayload { licenseFile activation { id } } ... on LicensingError { code message } ... on Error { message } } }`;
const IMPORT = `mutation($file: String!) { importOfflineDeactivation(input: { file: $file }) { __typename ... on ImportOfflineDeactivationPayload { imported } ... on LicensingError { code message } ... on Error { message } } }`;

/** A machine with no network at all. */
function machine(n: number): TesseraClient {
  return createClient({
    endpoint: 'http://127.0.0.1:9/graphql',
    timeoutMs: 500,
    tenant: slug,
    publicKeys: jwks,
    storage: memoryStorage(),
    device: { fingerprint: `air-gapped-${n}`, components: [{ kind: 'MACHINE_ID', value: `m${n}` }] },
  });
}

async function license(): Promise<{ id: string; key: string }> {
  return ok(await s.gql(`mutation($input: CreateLicenseInput!) { createLicense(input: $input) { ... on CreateLicensePayload { license { id key } } } }`, { input: { editionId } }, { token })).createLicense.license;
}

async function issue(licenseId: string, request: string): Promise<string> {
  const r = ok(await s.gql(ISSUE, { input: { licenseId, request } }, { token })).issueOfflineLicense;
  expect(r.__typename).toBe('OfflineLicensePayload');
  return r.licenseFile;
}

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'OK';
  } catch (err) {
    if (!(err instanceof TesseraError)) throw err;
    return err.code;
  }
}

beforeAll(async () => {
  s = await startTestServer();
  ({ slug, token } = await s.tenant());
  const productId = ok(await s.gql(`mutation { createProduct(input: { name: "Plant", code: "plant" }) { ... on Product { id } } }`, {}, { token })).createProduct.id;
  ok(await s.gql(`mutation($p: ID!) { createFeature(input: { productId: $p, code: "export", name: "Export" }) { __typename } }`, { p: productId }, { token }));
  editionId = ok(
    await s.gql(`mutation($input: CreateEditionInput!) { createEdition(input: $input) { ... on Edition { id } } }`, {
      input: { productId, name: 'Site', code: 'site', licenseType: 'PERPETUAL', maxActivations: 1, deploymentMode: 'OFFLINE', features: ['export'] },
    }, { token }),
  ).createEdition.id;
  jwks = (await (await s.fetch(`/.well-known/jwks.json?tenant=${slug}`)).json()) as JSONWebKeySet;
});
afterAll(() => s.close());

describe('validation on an air-gapped machine', () => {
  it('validate() decides from the installed license file when the server cannot be reached', async () => {
    const lic = await license();
    const m = machine(2);
    await m.installLicenseFile(await issue(lic.id, await m.createActivationRequest(lic.key)));
    expect(await m.validate({ feature: 'export' })).toMatchObject({ valid: true, offline: true, code: null, license: { features: ['export'] } });
    expect(await m.validate({ feature: 'render' })).toMatchObject({ valid: false, offline: true, code: 'FEATURE_NOT_ENTITLED' });
    await m.createDeactivationFile();
    expect(await m.validate()).toMatchObject({ valid: false, offline: true, code: 'NOT_ACTIVATED' });
  });
});

describe('deactivation files', () => {
  it('a deactivated license file is never installed or verified again here; a new one for the machine is', async () => {
    const lic = await license();
    const m = machine(1);
    const file = await issue(lic.id, await m.createActivationRequest(lic.key));
    await m.installLicenseFile(file);
    const deactivation = await m.createDeactivationFile();
    expect(ok(await s.gql(IMPORT, { file: deactivation }, { token })).importOfflineDeactivation).toMatchObject({ imported: true });

    expect(await code(m.installLicenseFile(file))).toBe('ACTIVATION_RELEASED');
    expect(await code(m.verifyLicenseFile(file))).toBe('ACTIVATION_RELEASED');
    expect((await m.state()).licenseFile).toBeUndefined();

    const again = await issue(lic.id, await m.createActivationRequest(lic.key));
    expect((await m.installLicenseFile(again)).payload.sub).toBeTruthy();
    expect((await m.state()).licenseFile).toBe(again);
  });
});

describe('offline usage', () => {
  it('counts only meters of the installed license file, so the deactivation file reporting it always imports', async () => {
    const productId = ok(await s.gql(`mutation { createProduct(input: { name: "Scanner", code: "scanner" }) { ... on Product { id } } }`, {}, { token })).createProduct.id;
    ok(await s.gql(`mutation($p: ID!) { createMeter(input: { productId: $p, code: "scans", name: "Scans" }) { __typename } }`, { p: productId }, { token }));
    const metered = ok(
      await s.gql(`mutation($input: CreateEditionInput!) { createEdition(input: $input) { ... on Edition { id } } }`, {
        input: { productId, name: 'Metered', code: 'metered', licenseType: 'PERPETUAL', maxActivations: 1, deploymentMode: 'OFFLINE', meters: [{ meter: 'scans', quota: 100, period: 'NONE' }] },
      }, { token }),
    ).createEdition.id;
    const lic = ok(await s.gql(`mutation($input: CreateLicenseInput!) { createLicense(input: $input) { ... on CreateLicensePayload { license { id key } } } }`, { input: { editionId: metered } }, { token })).createLicense.license;
    const m = machine(3);
    const request = await m.createActivationRequest(lic.key);
    expect(await code(m.recordOfflineUsage('scans', 1))).toBe('NOT_ACTIVATED'); // nothing installed to report it with
    await m.installLicenseFile(await issue(lic.id, request));

    expect(await code(m.recordOfflineUsage('pages', 1))).toBe('VALIDATION_FAILED');
    await m.recordOfflineUsage('scans', 2_147_483_000);
    expect(await code(m.recordOfflineUsage('scans', 1000))).toBe('VALIDATION_FAILED');
    await m.recordOfflineUsage('scans', 7);
    expect((await m.state()).offlineUsage).toEqual({ scans: 2_147_483_007 });

    const imported = ok(await s.gql(IMPORT, { file: await m.createDeactivationFile() }, { token })).importOfflineDeactivation;
    expect(imported).toMatchObject({ __typename: 'ImportOfflineDeactivationPayload', imported: true });
  });
});
