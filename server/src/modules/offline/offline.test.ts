import { generateKeyPair, SignJWT, exportJWK, type JSONWebKeySet } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient, type TesseraClient } from '../../../../sdk/src/client.ts';
import { TesseraError } from '../../../../sdk/src/errors.ts';
import { memoryStorage } from '../../../../sdk/src/storage.ts';
import { ok, startTestServer, type TestServer } from '../../../test/harness.ts';

// The air-gapped round trip through the real server and the real SDK: request file -> license file
// -> install -> refresh -> deactivation file -> import, and every bad file on the way.

let s: TestServer;
let slug: string;
let token: string;
let productId: string;
let jwks: JSONWebKeySet;

const ISSUE = `mutation($input: IssueOfflineLicenseInput!) { issueOfflineLicense(input: $input) {
  __typename ... on OfflineLicensePayload { licenseFile reused activation { id status offline fingerprint } }
  ... on LicensingError { code message } ... on ValidationError { message fields { path message } } ... on Error { message } } }`;
const REFRESH = `mutation($input: RefreshOfflineLicenseInput!) { refreshOfflineLicense(input: $input) {
  __typename ... on OfflineLicensePayload { licenseFile } ... on Error { message } } }`;
const IMPORT = `mutation($file: String!) { importOfflineDeactivation(input: { file: $file }) {
  __typename ... on ImportOfflineDeactivationPayload { imported activation { id status } } ... on LicensingError { code message } ... on Error { message } } }`;

async function edition(code: string, terms: Record<string, unknown>): Promise<string> {
  const r = ok(
    await s.gql(
      `mutation($input: CreateEditionInput!) { createEdition(input: $input) { __typename ... on Edition { id } ... on Error { message } } }`,
      { input: { productId, name: code, code, ...terms } },
      { token },
    ),
  );
  expect(r.createEdition.__typename).toBe('Edition');
  return r.createEdition.id;
}

async function license(editionId: string, extra: Record<string, unknown> = {}): Promise<{ id: string; key: string }> {
  const r = ok(await s.gql(`mutation($input: CreateLicenseInput!) { createLicense(input: $input) { ... on CreateLicensePayload { license { id key } } } }`, { input: { editionId, ...extra } }, { token }));
  return r.createLicense.license;
}

function machine(n: number, components = [{ kind: 'MACHINE_ID', value: `m${n}` }, { kind: 'CPU', value: `c${n}` }, { kind: 'DISK', value: `d${n}` }]): TesseraClient {
  return createClient({
    endpoint: 'http://127.0.0.1:9/graphql', // air-gapped: never reached
    tenant: slug,
    publicKeys: jwks,
    storage: memoryStorage(),
    device: { fingerprint: `offline-machine-${n}`, components },
  });
}

/** The database id inside a Relay global id. */
const dbId = (globalId: string) => Buffer.from(globalId, 'base64').toString('utf8').split(':')[1]!;

async function used(licenseId: string): Promise<number> {
  return (await s.db.prisma.license.findUniqueOrThrow({ where: { id: dbId(licenseId) } })).activationsUsed;
}

async function issue(licenseId: string, request: string) {
  return ok(await s.gql(ISSUE, { input: { licenseId, request } }, { token })).issueOfflineLicense;
}

let perpetualTwo: string;
let onlineOnly: string;
let offlineMajority: string;

beforeAll(async () => {
  s = await startTestServer();
  ({ slug, token } = await s.tenant());
  productId = ok(await s.gql(`mutation { createProduct(input: { name: "Plant", code: "plant" }) { ... on Product { id } } }`, {}, { token })).createProduct.id;
  ok(await s.gql(`mutation($p: ID!) { createMeter(input: { productId: $p, code: "cycles", name: "Cycles" }) { __typename } }`, { p: productId }, { token }));
  perpetualTwo = await edition('site', { licenseType: 'PERPETUAL', maxActivations: 2, deploymentMode: 'OFFLINE', meters: [{ meter: 'cycles', quota: 1000, period: 'NONE' }] });
  onlineOnly = await edition('cloud', { licenseType: 'PERPETUAL', maxActivations: 5, deploymentMode: 'ONLINE', allowOffline: false });
  offlineMajority = await edition('lab', { licenseType: 'SUBSCRIPTION', validityDays: 30, maxActivations: 3, deploymentMode: 'HYBRID', fingerprintMatch: 'MAJORITY' });
  jwks = (await (await s.fetch(`/.well-known/jwks.json?tenant=${slug}`)).json()) as JSONWebKeySet;
});
afterAll(() => s.close());

describe('offline activation round trip', () => {
  it('issues a license file from a request; it installs and verifies on that machine only', async () => {
    const lic = await license(perpetualTwo);
    const m1 = machine(1);
    const r = await issue(lic.id, await m1.createActivationRequest(lic.key));
    expect(r.__typename).toBe('OfflineLicensePayload');
    expect(r.licenseFile).toMatch(/^-----BEGIN TESSERA LICENSE-----/);
    expect(r.activation).toMatchObject({ status: 'ACTIVE', offline: true, fingerprint: 'offline-machine-1' });
    const installed = await m1.installLicenseFile(r.licenseFile);
    expect(installed.payload.sub).toBe(dbId(lic.id));
    await expect(machine(2).verifyLicenseFile(r.licenseFile)).rejects.toMatchObject({ code: 'FINGERPRINT_MISMATCH' });
    expect(await used(lic.id)).toBe(1);
  });

  it('counts each issuance against maxActivations: the third machine of two is refused', async () => {
    const lic = await license(perpetualTwo);
    expect((await issue(lic.id, await machine(11).createActivationRequest(lic.key))).__typename).toBe('OfflineLicensePayload');
    expect((await issue(lic.id, await machine(12).createActivationRequest(lic.key))).__typename).toBe('OfflineLicensePayload');
    const third = await issue(lic.id, await machine(13).createActivationRequest(lic.key));
    expect(third).toMatchObject({ __typename: 'LicensingError', code: 'ACTIVATION_LIMIT_REACHED' });
    // The same machine asking again is the same activation, not a new one.
    const again = await issue(lic.id, await machine(11).createActivationRequest(lic.key));
    expect(again).toMatchObject({ __typename: 'OfflineLicensePayload', reused: true });
    expect(await used(lic.id)).toBe(2);
  });

  it('treats a machine with one changed component as the same device under MAJORITY', async () => {
    const lic = await license(offlineMajority);
    const before = await issue(lic.id, await machine(21).createActivationRequest(lic.key));
    const changed = machine(21, [{ kind: 'MACHINE_ID', value: 'm21' }, { kind: 'CPU', value: 'c21' }, { kind: 'DISK', value: 'new-disk' }]);
    // A new fingerprint string, the same hardware by majority.
    (changed.device as { fingerprint: string }).fingerprint = 'offline-machine-21-after-disk-swap';
    const after = await issue(lic.id, await changed.createActivationRequest(lic.key));
    expect(after).toMatchObject({ __typename: 'OfflineLicensePayload', reused: true });
    expect(after.activation.id).toBe(before.activation.id);
    expect(await used(lic.id)).toBe(1);
  });

  it('accepts a typed-in fingerprint', async () => {
    const lic = await license(perpetualTwo);
    const r = ok(await s.gql(ISSUE, { input: { licenseId: lic.id, fingerprint: 'typed-fp-1' } }, { token })).issueOfflineLicense;
    expect(r).toMatchObject({ __typename: 'OfflineLicensePayload', activation: { fingerprint: 'typed-fp-1', offline: true } });
  });

  it('refuses offline issuance where the license forbids it, and online activation of an OFFLINE license', async () => {
    const cloud = await license(onlineOnly);
    const r = await issue(cloud.id, await machine(31).createActivationRequest(cloud.key));
    expect(r).toMatchObject({ __typename: 'LicensingError', code: 'OFFLINE_ACTIVATION_NOT_ALLOWED' });
    expect(await used(cloud.id)).toBe(0);
    const site = await license(perpetualTwo);
    const online = ok(await s.gql(`mutation($input: ActivateInput!) { activate(input: $input) { __typename ... on LicensingError { code } } }`, { input: { key: site.key, fingerprint: 'x' } }));
    expect(online.activate).toMatchObject({ __typename: 'LicensingError', code: 'ONLINE_ACTIVATION_NOT_ALLOWED' });
  });
});

describe('refresh and deactivation', () => {
  it('delivers a renewal as a refresh file; an older file is refused after it (anti-rollback)', async () => {
    const lic = await license(offlineMajority);
    const m = machine(41);
    const first = await issue(lic.id, await m.createActivationRequest(lic.key));
    await m.installLicenseFile(first.licenseFile);
    ok(await s.gql(`mutation($id: ID!) { renewLicense(input: { licenseId: $id, extendDays: 365 }) { __typename } }`, { id: lic.id }, { token }));
    const sync = await s.db.prisma.license.findUniqueOrThrow({ where: { id: dbId(lic.id) } });
    expect(sync.syncState).toBe('PENDING_SYNC');
    const refresh = ok(await s.gql(REFRESH, { input: { activationId: first.activation.id } }, { token })).refreshOfflineLicense;
    const installed = await m.installLicenseFile(refresh.licenseFile);
    expect(installed.payload.revision).toBe(sync.revision);
    expect((await s.db.prisma.license.findUniqueOrThrow({ where: { id: dbId(lic.id) } })).syncState).toBe('SYNCED');
    await expect(m.installLicenseFile(first.licenseFile)).rejects.toBeInstanceOf(TesseraError);
    expect((await m.state()).licenseFile).toBe(refresh.licenseFile);
  });

  it('refuses a refresh while the license is suspended, changing nothing', async () => {
    const lic = await license(offlineMajority);
    const issued = await issue(lic.id, await machine(43).createActivationRequest(lic.key));
    ok(await s.gql(`mutation($id: ID!) { renewLicense(input: { licenseId: $id, extendDays: 365 }) { __typename } }`, { id: lic.id }, { token }));
    ok(await s.gql(`mutation($id: ID!) { suspendLicense(input: { licenseId: $id }) { __typename } }`, { id: lic.id }, { token }));
    const events = await s.db.prisma.auditEvent.count({ where: { licenseId: dbId(lic.id) } });
    const r = ok(await s.gql(REFRESH, { input: { activationId: issued.activation.id } }, { token })).refreshOfflineLicense;
    expect(r).toMatchObject({ __typename: 'ConflictError', message: expect.stringMatching(/suspended/) });
    const res = await s.fetch(`/offline/bundle?activationId=${issued.activation.id}`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(409);
    expect((await s.db.prisma.license.findUniqueOrThrow({ where: { id: dbId(lic.id) } })).syncState).toBe('PENDING_SYNC');
    expect(await s.db.prisma.auditEvent.count({ where: { licenseId: dbId(lic.id) } })).toBe(events);
  });

  it("lasts through a subscription's grace period, as an online device's token does", async () => {
    const lic = await license(offlineMajority, { gracePeriodSeconds: 7 * 86400 });
    const m = machine(42);
    const issued = await issue(lic.id, await m.createActivationRequest(lic.key));
    const installed = await m.installLicenseFile(issued.licenseFile);
    const row = await s.db.prisma.license.findUniqueOrThrow({ where: { id: dbId(lic.id) } });
    const graceEnds = row.expiresAt!.getTime() + 7 * 86_400_000;
    expect(installed.payload.exp).toBe(Math.floor(graceEnds / 1000));
    expect(installed.payload).toMatchObject({ licenseExpiresAt: row.expiresAt!.toISOString(), graceEndsAt: new Date(graceEnds).toISOString() });
  });

  it('imports a deactivation file exactly once: frees the activation and adds offline usage to the ledger', async () => {
    const lic = await license(perpetualTwo);
    const m = machine(51);
    const issued = await issue(lic.id, await m.createActivationRequest(lic.key));
    await m.installLicenseFile(issued.licenseFile);
    await m.recordOfflineUsage('cycles', 40);
    await m.recordOfflineUsage('cycles', 2);
    const file = await m.createDeactivationFile();
    expect(file).toMatch(/^-----BEGIN TESSERA DEACTIVATION-----/);
    expect((await m.state()).licenseFile).toBeUndefined();

    const first = ok(await s.gql(IMPORT, { file }, { token })).importOfflineDeactivation;
    expect(first).toMatchObject({ __typename: 'ImportOfflineDeactivationPayload', imported: true, activation: { status: 'RELEASED' } });
    expect(await used(lic.id)).toBe(0);
    const ledger = await s.db.prisma.usageLedgerEntry.findMany({ where: { licenseId: dbId(lic.id) } });
    expect(ledger.map((e) => [e.meter, e.quantity])).toEqual([['cycles', 42]]);

    const second = ok(await s.gql(IMPORT, { file }, { token })).importOfflineDeactivation;
    expect(second).toMatchObject({ imported: false, activation: { status: 'RELEASED' } });
    expect(await s.db.prisma.usageLedgerEntry.count({ where: { licenseId: dbId(lic.id) } })).toBe(1);
    const balance = await s.db.prisma.usageBalance.findFirstOrThrow({ where: { licenseId: dbId(lic.id) } });
    expect(balance.used).toBe(42);
  });

  it('imports the deactivation file of a machine an operator already released: usage recorded, no second release', async () => {
    const lic = await license(perpetualTwo);
    const m = machine(53);
    const issued = await issue(lic.id, await m.createActivationRequest(lic.key));
    await m.installLicenseFile(issued.licenseFile);
    await m.recordOfflineUsage('cycles', 7);
    const released = ok(await s.gql(`mutation($id: ID!) { releaseActivation(input: { activationId: $id }) { __typename } }`, { id: issued.activation.id }, { token }));
    expect(released.releaseActivation.__typename).toBe('Activation');
    expect(await used(lic.id)).toBe(0);

    const r = ok(await s.gql(IMPORT, { file: await m.createDeactivationFile() }, { token })).importOfflineDeactivation;
    expect(r).toMatchObject({ imported: true, activation: { status: 'RELEASED' } });
    expect(await used(lic.id)).toBe(0);
    expect((await s.db.prisma.usageBalance.findFirstOrThrow({ where: { licenseId: dbId(lic.id) } })).used).toBe(7);
    // One activation.released (the operator's): webhook receivers and the feed count one freed seat.
    const events = await s.db.prisma.auditEvent.findMany({ where: { subjectId: dbId(issued.activation.id) }, orderBy: { id: 'asc' } });
    expect(events.map((e) => e.type)).toEqual(['activation.created', 'activation.released', 'activation.deactivation_imported']);
    expect(events[2]!.payload).toMatchObject({ reason: 'offline_deactivation', usage: { cycles: 7 } });
  });

  it('imports the deactivation file of a machine whose meter was taken off the license meanwhile: the seat is freed', async () => {
    const lic = await license(perpetualTwo);
    const m = machine(54);
    const issued = await issue(lic.id, await m.createActivationRequest(lic.key));
    await m.installLicenseFile(issued.licenseFile);
    await m.recordOfflineUsage('cycles', 5);
    const updated = ok(await s.gql(`mutation($input: UpdateLicenseInput!) { updateLicense(input: $input) { __typename ... on Error { message } } }`, { input: { licenseId: lic.id, meters: [] } }, { token }));
    expect(updated.updateLicense.__typename).toBe('License');

    const r = ok(await s.gql(IMPORT, { file: await m.createDeactivationFile() }, { token })).importOfflineDeactivation;
    expect(r).toMatchObject({ imported: true, activation: { status: 'RELEASED' } });
    expect(await used(lic.id)).toBe(0);
    // No quota to count it against: not in the ledger, but kept with the deactivation and said in its event.
    expect(await s.db.prisma.usageLedgerEntry.count({ where: { licenseId: dbId(lic.id) } })).toBe(0);
    expect((await s.db.prisma.offlineDeactivation.findFirstOrThrow({ where: { activationId: dbId(issued.activation.id) } })).usage).toEqual({ cycles: 5 });
    const event = await s.db.prisma.auditEvent.findFirstOrThrow({ where: { subjectId: dbId(issued.activation.id), type: 'activation.released' } });
    expect(event.payload).toMatchObject({ reason: 'offline_deactivation', usage: { cycles: 5 }, unrecorded: ['cycles'] });
  });

  it("an online deactivate does not free an offline machine's seat: its license file still works", async () => {
    const lic = await license(perpetualTwo);
    const m = machine(52);
    const issued = await issue(lic.id, await m.createActivationRequest(lic.key));
    await m.installLicenseFile(issued.licenseFile);
    const events = await s.db.prisma.auditEvent.count();
    const online = ok(await s.gql(`mutation($input: DeactivateInput!) { deactivate(input: $input) { __typename ... on LicensingError { code } } }`, {
      input: { key: lic.key, fingerprint: 'offline-machine-52' },
    })).deactivate;
    expect(online).toMatchObject({ __typename: 'LicensingError', code: 'ONLINE_ACTIVATION_NOT_ALLOWED' });
    expect(await used(lic.id)).toBe(1);
    expect(await s.db.prisma.auditEvent.count()).toBe(events);
    // Its deactivation file, or an operator, still frees it.
    const freed = ok(await s.gql(IMPORT, { file: await m.createDeactivationFile() }, { token })).importOfflineDeactivation;
    expect(freed).toMatchObject({ imported: true, activation: { status: 'RELEASED' } });
    expect(await used(lic.id)).toBe(0);
  });

  it('serves an offline update bundle: license file, public keys and a README in a tar', async () => {
    const lic = await license(perpetualTwo);
    const issued = await issue(lic.id, await machine(61).createActivationRequest(lic.key));
    const res = await s.fetch(`/offline/bundle?activationId=${issued.activation.id}`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/x-tar');
    const tar = Buffer.from(await res.arrayBuffer()).toString('latin1');
    for (const name of ['license.lic', 'jwks.json', 'README.txt']) expect(tar).toContain(name);
    expect(tar).toContain('-----BEGIN TESSERA LICENSE-----');
    expect((await s.fetch(`/offline/bundle?activationId=${issued.activation.id}`)).status).toBe(401);
  });
});

describe('the offline update bundle', () => {
  const bundle = (activationId: string, method = 'GET') =>
    s.fetch(`/offline/bundle?activationId=${activationId}`, { method, headers: { authorization: `Bearer ${token}` } });
  const state = async (licenseId: string, activationId: string) => ({
    sync: (await s.db.prisma.license.findUniqueOrThrow({ where: { id: dbId(licenseId) } })).syncState,
    synced: (await s.db.prisma.activation.findUniqueOrThrow({ where: { id: dbId(activationId) } })).syncedRevision,
    refreshes: await s.db.prisma.auditEvent.count({ where: { subjectId: dbId(activationId), type: 'license.refresh_issued' } }),
  });

  it('GET changes nothing: it packs the file the machine holds, and refuses to stand in for a refresh', async () => {
    const lic = await license(offlineMajority);
    const m = machine(62);
    const issued = await issue(lic.id, await m.createActivationRequest(lic.key));
    const res = await bundle(issued.activation.id);
    expect(res.status).toBe(200);
    expect(Buffer.from(await res.arrayBuffer()).toString('latin1')).toContain('-----BEGIN TESSERA LICENSE-----');
    expect(await state(lic.id, issued.activation.id)).toMatchObject({ sync: 'SYNCED', refreshes: 0 });

    // A renewal: the machine's file is behind. A GET (a link prefetched or crawled) neither sends the
    // change nor marks it delivered.
    ok(await s.gql(`mutation($id: ID!) { renewLicense(input: { licenseId: $id, extendDays: 30 }) { __typename } }`, { id: lic.id }, { token }));
    const before = await state(lic.id, issued.activation.id);
    expect(before.sync).toBe('PENDING_SYNC');
    const refused = await bundle(issued.activation.id);
    expect(refused.status).toBe(409);
    expect(await refused.text()).toMatch(/issue a refresh \(POST\)/);
    expect(await state(lic.id, issued.activation.id)).toEqual(before);

    // POST issues the refresh: recorded once, the license in sync, the machine installs the new revision.
    const posted = await bundle(issued.activation.id, 'POST');
    expect(posted.status).toBe(200);
    const tarText = Buffer.from(await posted.arrayBuffer()).toString('utf8');
    const file = /-----BEGIN TESSERA LICENSE-----[\s\S]*?-----END TESSERA LICENSE-----\n/.exec(tarText)![0];
    await m.installLicenseFile(issued.licenseFile);
    const installed = await m.installLicenseFile(file);
    const after = await state(lic.id, issued.activation.id);
    expect(after).toMatchObject({ sync: 'SYNCED', refreshes: 1 });
    expect(installed.payload.revision).toBe(after.synced);
    expect((await bundle(issued.activation.id, 'PUT')).status).toBe(405);
  });
});

describe('bad files change nothing', () => {
  let lic: { id: string; key: string };
  let before: number;
  beforeAll(async () => {
    lic = await license(perpetualTwo);
    await issue(lic.id, await machine(71).createActivationRequest(lic.key));
    before = await used(lic.id);
  });

  async function expectRefused(input: Record<string, unknown>, typename: string, code?: string) {
    const r = ok(await s.gql(ISSUE, { input: { licenseId: lic.id, ...input } }, { token })).issueOfflineLicense;
    expect(r.__typename).toBe(typename);
    if (code) expect(r.code).toBe(code);
    expect(await used(lic.id)).toBe(before);
  }

  it('refuses a tampered, truncated, oversized or foreign request', async () => {
    const request = await machine(72).createActivationRequest(lic.key);
    const lines = request.split('\n');
    const flipped = lines.map((l, i) => (i === 3 ? l.slice(0, 10) + (l[10] === 'A' ? 'B' : 'A') + l.slice(11) : l)).join('\n');
    await expectRefused({ request: flipped }, 'LicensingError', 'INVALID_SIGNATURE');
    await expectRefused({ request: request.slice(0, 200) }, 'LicensingError', 'INVALID_SIGNATURE');
    await expectRefused({ request: 'A'.repeat(5 * 1024 * 1024) }, 'ValidationError');
    const otherVendor = createClient({ endpoint: 'http://127.0.0.1:9', tenant: 'someone-else', device: { fingerprint: 'z', components: [] } });
    await expectRefused({ request: await otherVendor.createActivationRequest(lic.key) }, 'ValidationError');
    await expectRefused({ request: await machine(73).createActivationRequest('LIC-0000-000000000000-0000') }, 'ValidationError');
  });

  it('says which file it was given instead, and that a request and a fingerprint do not go together', async () => {
    const own = await license(perpetualTwo);
    const request = await machine(75).createActivationRequest(own.key);
    const { licenseFile } = await issue(own.id, request);
    const wrong = ok(await s.gql(ISSUE, { input: { licenseId: lic.id, request: licenseFile } }, { token })).issueOfflineLicense;
    expect(wrong.fields).toEqual([{ path: 'request', message: 'is a license file, not an activation request file' }]);
    const both = ok(await s.gql(ISSUE, { input: { licenseId: lic.id, request, fingerprint: 'x' } }, { token })).issueOfflineLicense;
    expect(both.fields).toEqual([{ path: 'request', message: 'give either a request file or a fingerprint, not both' }]);
    expect(await used(lic.id)).toBe(before);
  });

  it('refuses a replayed request (nonce already used) and an old one', async () => {
    const own = await license(perpetualTwo);
    const request = await machine(74).createActivationRequest(own.key);
    expect((await issue(own.id, request)).__typename).toBe('OfflineLicensePayload');
    const replay = await issue(own.id, request);
    expect(replay).toMatchObject({ __typename: 'LicensingError', code: 'REQUEST_EXPIRED' });
    const { privateKey, publicKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
    const old = await new SignJWT({ tenant: slug, key: own.key, fingerprint: 'old-fp', components: [], client: {}, nonce: 'n-old-0000000' })
      .setProtectedHeader({ alg: 'EdDSA', typ: 'tessera-request+jwt', jwk: await exportJWK(publicKey) })
      .setIssuedAt(Math.floor(Date.now() / 1000) - 40 * 86400)
      .sign(privateKey);
    expect(await issue(own.id, old)).toMatchObject({ __typename: 'LicensingError', code: 'REQUEST_EXPIRED' });
    expect(await used(own.id)).toBe(1);
  });

  it('refuses other signed documents presented as requests or deactivation files', async () => {
    const act = ok(await s.gql(`mutation($input: ActivateInput!) { activate(input: $input) { ... on ActivateSuccess { token } } }`, { input: { key: (await license(offlineMajority)).key, fingerprint: 'online-1' } }));
    await expectRefused({ request: act.activate.token }, 'LicensingError', 'INVALID_SIGNATURE');
    const r = ok(await s.gql(IMPORT, { file: act.activate.token }, { token })).importOfflineDeactivation;
    expect(r).toMatchObject({ __typename: 'LicensingError', code: 'INVALID_SIGNATURE' });
  });

  it('refuses a deactivation file signed by another machine, or for another vendor', async () => {
    const lic2 = await license(perpetualTwo);
    const owner = machine(81);
    const issued = await issue(lic2.id, await owner.createActivationRequest(lic2.key));
    await owner.installLicenseFile(issued.licenseFile);
    // An impostor with the same license file but its own device key.
    const impostor = machine(81);
    await impostor.createActivationRequest(lic2.key);
    await impostor.installLicenseFile(issued.licenseFile);
    const forged = await impostor.createDeactivationFile();
    const r = ok(await s.gql(IMPORT, { file: forged }, { token })).importOfflineDeactivation;
    expect(r).toMatchObject({ __typename: 'LicensingError', code: 'INVALID_SIGNATURE' });
    expect(await used(lic2.id)).toBe(1);

    const genuine = await owner.createDeactivationFile();
    const other = await s.tenant();
    const foreign = ok(await s.gql(IMPORT, { file: genuine }, { token: other.token })).importOfflineDeactivation;
    expect(foreign).toMatchObject({ __typename: 'LicensingError', code: 'INVALID_SIGNATURE' });
    expect(await used(lic2.id)).toBe(1);
  });
});
