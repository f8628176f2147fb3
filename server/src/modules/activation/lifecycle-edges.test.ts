import { decodeGlobalID } from '@pothos/plugin-relay';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshPostgres, ok, startTestServer, testDatabaseUrl, type TestServer } from '../../../test/harness.ts';
import { waitForLockWaiters } from '../../../test/locks.ts';
import { activateDevice, components, deactivateDevice, edition, heartbeatDevice, issue, license as issueLicense, product, validate } from './fixtures.ts';
import { activate, reclaimInactive } from './service.ts';

/**
 * Device-lifecycle edges found in review: each test here failed before its fix. The ones that need a
 * second connection holding a row lock (a revocation or a lock order racing a batch) run on
 * PostgreSQL only: PGlite has one connection, so nothing can wait for a lock there.
 */

let s: TestServer;
let token: string;
let tenantId: string;
/** On PostgreSQL, the database's URL: the lock tests open a connection of their own to it. */
let fresh: Awaited<ReturnType<typeof freshPostgres>> | undefined;
beforeAll(async () => {
  fresh = testDatabaseUrl ? await freshPostgres(testDatabaseUrl) : undefined;
  s = await startTestServer({ databaseUrl: fresh?.url });
  ({ token, id: tenantId } = await s.tenant());
});
afterAll(async () => {
  await s.close();
  await fresh?.drop();
});

const UPDATE_LICENSE = `mutation($input: UpdateLicenseInput!) { updateLicense(input: $input) { __typename ... on License { revision syncState } ... on Error { message } } }`;
const ISSUE_OFFLINE = `mutation($input: IssueOfflineLicenseInput!) { issueOfflineLicense(input: $input) {
  __typename ... on OfflineLicensePayload { activation { id status offline } } ... on Error { message } ... on LicensingError { code } } }`;

const licenseRow = (id: string) => s.db.prisma.license.findUniqueOrThrow({ where: { id } });
const events = (type: string, licenseId: string) => s.db.prisma.auditEvent.findMany({ where: { tenantId, type, licenseId } });

describe('sync state', () => {
  it('a license waiting for its only device to sync is in sync once that device moves to another license of the product', async () => {
    const productId = await product(s, token);
    const editionId = await edition(s, token, productId, { maxActivations: 2 });
    const old = await issueLicense(s, token, editionId);
    const next = await issueLicense(s, token, editionId);
    expect((await activateDevice(s, { key: old.key, fingerprint: 'mover' })).__typename).toBe('ActivateSuccess');
    const updated = ok(await s.gql(UPDATE_LICENSE, { input: { licenseId: old.globalId, maxActivations: 5 } }, { token })).updateLicense;
    expect(updated).toMatchObject({ __typename: 'License', syncState: 'PENDING_SYNC' });

    expect((await activateDevice(s, { key: next.key, fingerprint: 'mover' })).__typename).toBe('ActivateSuccess');
    expect(await licenseRow(old.id)).toMatchObject({ activationsUsed: 0, syncState: 'SYNCED' });
    expect(await events('license.synced', old.id)).toHaveLength(1);
  });
});

describe('moving a device between licenses of a product', () => {
  const customer = async (name: string) =>
    ok(await s.gql(`mutation($name: String!) { createCustomer(input: { name: $name }) { ... on Customer { id } } }`, { name }, { token })).createCustomer.id as string;

  it('happens within one customer, never from another customer\'s license', async () => {
    const productId = await product(s, token);
    const editionId = await edition(s, token, productId, { maxActivations: 2 });
    const [acme, globex] = [await customer('Acme'), await customer('Globex')];
    const victim = await issueLicense(s, token, editionId, { customerId: acme });
    const upgrade = await issueLicense(s, token, editionId, { customerId: acme });
    const stranger = await issueLicense(s, token, editionId, { customerId: globex });
    expect((await activateDevice(s, { key: victim.key, fingerprint: 'shared-fp' })).__typename).toBe('ActivateSuccess');

    // Another customer's key with the same fingerprint: its own activation, and the first one stays.
    expect(await activateDevice(s, { key: stranger.key, fingerprint: 'shared-fp' })).toMatchObject({ __typename: 'ActivateSuccess', reused: false });
    expect((await heartbeatDevice(s, { key: victim.key, fingerprint: 'shared-fp' })).__typename).toBe('HeartbeatSuccess');
    expect(await licenseRow(victim.id)).toMatchObject({ activationsUsed: 1 });
    expect(await events('activation.released', victim.id)).toHaveLength(0);

    // The same customer's new license takes the device over.
    expect((await activateDevice(s, { key: upgrade.key, fingerprint: 'shared-fp' })).__typename).toBe('ActivateSuccess');
    expect(await heartbeatDevice(s, { key: victim.key, fingerprint: 'shared-fp' })).toMatchObject({ code: 'ACTIVATION_RELEASED' });
    expect(await licenseRow(victim.id)).toMatchObject({ activationsUsed: 0 });
    expect(await licenseRow(stranger.id)).toMatchObject({ activationsUsed: 1 });
  });

  it('a device activating with two licenses of one product and customer at once ends live on one of them', async () => {
    const editionId = await edition(s, token, await product(s, token), { maxActivations: 100 });
    const acme = await customer('Acme twice');
    const [a, b] = [await issueLicense(s, token, editionId, { customerId: acme }), await issueLicense(s, token, editionId, { customerId: acme })];
    const devices = Array.from({ length: 20 }, (_, i) => `both-${i}`);
    // Both calls of each device in flight together, all 40 at once: each is answered as activated (the
    // later one moving the device from the earlier one's license).
    const answers = await Promise.all(devices.flatMap((fingerprint) => [a, b].map((l) => activateDevice(s, { key: l.key, fingerprint }))));
    expect(answers.filter((r) => r.__typename !== 'ActivateSuccess')).toEqual([]);
    const live = await s.db.prisma.activation.findMany({ where: { licenseId: { in: [a.id, b.id] }, status: 'ACTIVE' } });
    expect(live.map((x) => x.fingerprint).sort()).toEqual([...devices].sort());
    const on = (id: string) => live.filter((x) => x.licenseId === id).length;
    expect((await licenseRow(a.id)).activationsUsed).toBe(on(a.id));
    expect((await licenseRow(b.id)).activationsUsed).toBe(on(b.id));
    const moved = [...(await events('activation.released', a.id)), ...(await events('activation.released', b.id))];
    expect(moved.map((e) => (e.payload as { fingerprint: string }).fingerprint).sort()).toEqual([...devices].sort());
  });

  it('a license given to another customer takes its devices along, and is refused while a device is live on both customers\' licenses', async () => {
    const editionId = await edition(s, token, await product(s, token), { maxActivations: 5 });
    const [acme, globex] = [await customer('Acme moving'), await customer('Globex moving')];
    const ours = await issueLicense(s, token, editionId, { customerId: acme });
    const theirs = await issueLicense(s, token, editionId, { customerId: globex });
    expect((await activateDevice(s, { key: ours.key, fingerprint: 'on-both' })).__typename).toBe('ActivateSuccess');
    expect((await activateDevice(s, { key: theirs.key, fingerprint: 'on-both' })).__typename).toBe('ActivateSuccess');
    expect((await activateDevice(s, { key: theirs.key, fingerprint: 'only-theirs' })).__typename).toBe('ActivateSuccess');

    const give = async () => ok(await s.gql(UPDATE_LICENSE, { input: { licenseId: theirs.globalId, customerId: acme } }, { token })).updateLicense;
    const before = await licenseRow(theirs.id);
    expect(await give()).toMatchObject({ __typename: 'ConflictError', message: expect.stringContaining('on-both') });
    expect(await licenseRow(theirs.id)).toEqual(before);

    // Released on one of the two, the license moves, and its devices count as Acme's from then on.
    expect((await deactivateDevice(s, { key: ours.key, fingerprint: 'on-both' })).__typename).toBe('DeactivateSuccess');
    expect(await give()).toMatchObject({ __typename: 'License', revision: before.revision + 1 });
    expect(await activateDevice(s, { key: ours.key, fingerprint: 'only-theirs' })).toMatchObject({ __typename: 'ActivateSuccess', reused: false });
    expect(await heartbeatDevice(s, { key: theirs.key, fingerprint: 'only-theirs' })).toMatchObject({ code: 'ACTIVATION_RELEASED' });
    expect(await licenseRow(theirs.id)).toMatchObject({ customerId: decodeGlobalID(acme).id, activationsUsed: 1 });
  });

  it('a license given to another customer takes its live activations along and leaves its released ones as they were', async () => {
    const editionId = await edition(s, token, await product(s, token), { maxActivations: 5 });
    const [acme, globex] = [await customer('Acme history'), await customer('Globex history')];
    const lic = await issueLicense(s, token, editionId, { customerId: globex });
    expect((await activateDevice(s, { key: lic.key, fingerprint: 'gone' })).__typename).toBe('ActivateSuccess');
    expect((await deactivateDevice(s, { key: lic.key, fingerprint: 'gone' })).__typename).toBe('DeactivateSuccess');
    expect((await activateDevice(s, { key: lic.key, fingerprint: 'live' })).__typename).toBe('ActivateSuccess');

    expect(ok(await s.gql(UPDATE_LICENSE, { input: { licenseId: lic.globalId, customerId: acme } }, { token })).updateLicense.__typename).toBe('License');
    const rows = await s.db.prisma.activation.findMany({ where: { licenseId: lic.id }, select: { fingerprint: true, status: true, customerId: true } });
    expect(Object.fromEntries(rows.map((r) => [r.fingerprint, [r.status, r.customerId]]))).toEqual({
      gone: ['RELEASED', decodeGlobalID(globex).id],
      live: ['ACTIVE', decodeGlobalID(acme).id],
    });
    // The live device is Acme's now: Acme's other license of the product takes it over.
    const other = await issueLicense(s, token, editionId, { customerId: acme });
    expect((await activateDevice(s, { key: other.key, fingerprint: 'live' })).__typename).toBe('ActivateSuccess');
    expect(await heartbeatDevice(s, { key: lic.key, fingerprint: 'live' })).toMatchObject({ code: 'ACTIVATION_RELEASED' });
  });

  it('a device recognised by its components under a fingerprint live on another of the product\'s licenses moves there', async () => {
    const editionId = await edition(s, token, await product(s, token), { maxActivations: 5, fingerprintMatch: 'MAJORITY' });
    const [first, second] = [await issueLicense(s, token, editionId), await issueLicense(s, token, editionId)];
    const held = await activateDevice(s, { key: first.key, fingerprint: 'fp-old', components: components('m1', 'c1', 'd1') });
    // Its disk replaced, the machine reports a new fingerprint, and activates with the second license
    // as a new device (an exact match is needed there: the first license's activation is not its own).
    expect((await activateDevice(s, { key: second.key, fingerprint: 'fp-new', components: components('m1', 'c1', 'd2') })).__typename).toBe('ActivateSuccess');
    // Then with the first license again: recognised by its components, it takes its new fingerprint
    // along and leaves the second license, so that fingerprint is live on one license.
    const again = await activateDevice(s, { key: first.key, fingerprint: 'fp-new', components: components('m1', 'c1', 'd2') });
    expect(again).toMatchObject({ __typename: 'ActivateSuccess', reused: true, activation: { id: held.activation.id, fingerprint: 'fp-new' } });
    expect((await heartbeatDevice(s, { key: first.key, fingerprint: 'fp-new' })).__typename).toBe('HeartbeatSuccess');
    expect(await heartbeatDevice(s, { key: second.key, fingerprint: 'fp-new' })).toMatchObject({ code: 'ACTIVATION_RELEASED' });
    expect(await licenseRow(second.id)).toMatchObject({ activationsUsed: 0 });
    expect(await licenseRow(first.id)).toMatchObject({ activationsUsed: 1 });
    const [changed] = await events('device.components_changed', first.id);
    expect(changed!.payload).toMatchObject({ fromFingerprint: 'fp-old', toFingerprint: 'fp-new', added: [{ value: 'd2' }] });
    expect((await events('activation.released', second.id)).map((e) => e.payload)).toEqual([{ reason: 'moved', fingerprint: 'fp-new', toLicenseId: first.id }]);
  });
});

describe('inactivity reclamation', () => {
  it('leaves offline devices alone: they never send heartbeats, and their license file is their seat', async () => {
    const l = await issue(s, token, { maxActivations: 1, inactivityReclaimSeconds: 60, deploymentMode: 'HYBRID', allowOffline: true });
    const offline = ok(await s.gql(ISSUE_OFFLINE, { input: { licenseId: l.globalId, fingerprint: 'air-gapped' } }, { token })).issueOfflineLicense;
    expect(offline).toMatchObject({ __typename: 'OfflineLicensePayload', activation: { status: 'ACTIVE', offline: true } });

    expect(await reclaimInactive(s.app.deps, new Date(Date.now() + 3600_000))).toBe(0);
    expect(await licenseRow(l.id)).toMatchObject({ activationsUsed: 1 });
    expect(await activateDevice(s, { key: l.key, fingerprint: 'second' })).toMatchObject({ code: 'ACTIVATION_LIMIT_REACHED' });
  });

  it('counts a re-activation as the device being seen', async () => {
    const l = await issue(s, token, { maxActivations: 1, inactivityReclaimSeconds: 60 });
    expect((await activateDevice(s, { key: l.key, fingerprint: 'back' })).__typename).toBe('ActivateSuccess');
    await s.db.prisma.activation.updateMany({ where: { licenseId: l.id }, data: { activatedAt: new Date(Date.now() - 3600_000) } });
    expect(await activateDevice(s, { key: l.key, fingerprint: 'back' })).toMatchObject({ reused: true });

    expect(await reclaimInactive(s.app.deps)).toBe(0);
    expect((await heartbeatDevice(s, { key: l.key, fingerprint: 'back' })).__typename).toBe('HeartbeatSuccess');
  });
});

describe('the device a key and fingerprint name', () => {
  it('is the live activation, not a later released one under the same fingerprint', async () => {
    const l = await issue(s, token, { maxActivations: 3, fingerprintMatch: 'MAJORITY' });
    const a = await activateDevice(s, { key: l.key, fingerprint: 'fa', components: components('m1', 'c1', 'd1') });
    expect(a.__typename).toBe('ActivateSuccess');
    // Another activation under "fb", made later and released.
    expect((await activateDevice(s, { key: l.key, fingerprint: 'fb' })).__typename).toBe('ActivateSuccess');
    expect((await deactivateDevice(s, { key: l.key, fingerprint: 'fb' })).__typename).toBe('DeactivateSuccess');
    // Device A's disk changes and its fingerprint becomes "fb": it is recognised as A, under the new fingerprint.
    const moved = await activateDevice(s, { key: l.key, fingerprint: 'fb', components: components('m1', 'c1', 'd2') });
    expect(moved).toMatchObject({ __typename: 'ActivateSuccess', reused: true, activation: { id: a.activation.id } });

    expect(await heartbeatDevice(s, { key: l.key, fingerprint: 'fb' })).toMatchObject({ __typename: 'HeartbeatSuccess', activation: { id: a.activation.id } });
    expect(await validate(s, { key: l.key, fingerprint: 'fb' })).toMatchObject({ valid: true });
    expect(await activateDevice(s, { key: l.key, fingerprint: 'fb' })).toMatchObject({ __typename: 'ActivateSuccess', reused: true, activation: { id: a.activation.id } });
    expect(await deactivateDevice(s, { key: l.key, fingerprint: 'fb' })).toMatchObject({ __typename: 'DeactivateSuccess', activation: { id: a.activation.id } });
    expect(await licenseRow(l.id)).toMatchObject({ activationsUsed: 0 });
  });
});

describe('goodwill', () => {
  it('a device activating twice at once takes one slot, and the device after it is not counted as goodwill', async () => {
    // A version rule sends these calls through the batched insert that follows the rules' lookup.
    for (let round = 0; round < 5; round++) {
      const l = await issue(s, token, { maxActivations: 2, goodwillActivations: 1, allowedVersions: '>=1.0.0' });
      const client = { appVersion: '1.2.0' };
      const results = await Promise.all([
        activateDevice(s, { key: l.key, fingerprint: 'twice', client }),
        activateDevice(s, { key: l.key, fingerprint: 'twice', client }),
        activateDevice(s, { key: l.key, fingerprint: 'other', client }),
      ]);
      expect(results.map((r) => r.__typename)).toEqual(['ActivateSuccess', 'ActivateSuccess', 'ActivateSuccess']);
      expect(results.filter((r) => r.reused)).toHaveLength(1);
      expect(results.map((r) => r.goodwill)).toEqual([false, false, false]);
      expect(await licenseRow(l.id)).toMatchObject({ activationsUsed: 2 });
      expect(await s.db.prisma.activation.count({ where: { licenseId: l.id, goodwill: true } })).toBe(0);
      expect(await events('compliance.goodwill_used', l.id)).toHaveLength(0);
    }
  });
});

describe('refusals in a burst', () => {
  it('300 activations past the cap at once are each refused and recorded, none with an internal error', async () => {
    const l = await issue(s, token, { maxActivations: 1 });
    expect((await activateDevice(s, { key: l.key, fingerprint: 'first' })).__typename).toBe('ActivateSuccess');
    const results = await Promise.all(Array.from({ length: 300 }, (_, i) => s.gql(
      `mutation($input: ActivateInput!) { activate(input: $input) { __typename ... on LicensingError { code } } }`,
      { input: { key: l.key, fingerprint: `over-${i}` } },
    )));
    expect(results.flatMap((r) => r.errors ?? [])).toEqual([]);
    expect(results.filter((r) => r.data.activate.code === 'ACTIVATION_LIMIT_REACHED')).toHaveLength(300);
    expect(await events('compliance.activation_denied', l.id)).toHaveLength(300);
    expect(await licenseRow(l.id)).toMatchObject({ activationsUsed: 1 });
  });
});

describe.skipIf(!testDatabaseUrl)('row locks held by another transaction (PostgreSQL)', () => {
  let conn: pg.Client;
  beforeAll(async () => {
    conn = new pg.Client({ connectionString: fresh!.url });
    await conn.connect();
  });
  afterAll(() => conn?.end());

  it('an activation waiting on a license that is being revoked is refused with LICENSE_REVOKED, on either path', async () => {
    const l = await issue(s, token, { maxActivations: 5 }, { tokenCount: 1 });
    await conn.query('BEGIN');
    await conn.query(`UPDATE "License" SET state = 'REVOKED' WHERE id = $1`, [l.id]);
    // A license key for a new device waits on the row in the one-statement activation; the token key
    // was looked up by that same statement (as still active) and goes on to the one-call path after it.
    const pending = Promise.all([
      activateDevice(s, { key: l.key, fingerprint: 'late-1' }),
      activateDevice(s, { key: l.tokenKeys[0], fingerprint: 'late-2' }),
    ]);
    await waitForLockWaiters(conn, 1);
    await conn.query('COMMIT');
    const results = await pending;
    expect(results.map((r) => r.code)).toEqual(['LICENSE_REVOKED', 'LICENSE_REVOKED']);
    expect(await licenseRow(l.id)).toMatchObject({ activationsUsed: 0 });
    expect(await s.db.prisma.activation.count({ where: { licenseId: l.id } })).toBe(0);
  });

  it('a batch of activations caught in a deadlock runs again instead of failing every call in it', async () => {
    const productId = await product(s, token);
    const editionId = await edition(s, token, productId, { maxActivations: 10 });
    const [a, b] = [await issueLicense(s, token, editionId), await issueLicense(s, token, editionId)].sort((x, y) => (x.id < y.id ? -1 : 1));
    const gate = await issueLicense(s, token, editionId);
    const other = new pg.Client({ connectionString: fresh!.url });
    await other.connect();
    try {
      // The other party holds b and, later, asks for a: against the id order the batch locks them in.
      // It never checks for the deadlock itself (a long deadlock_timeout), so the batch is the one aborted.
      await conn.query(`SET deadlock_timeout = '10s'`);
      await conn.query('BEGIN');
      await conn.query(`SELECT id FROM "License" WHERE id = $1 FOR UPDATE`, [b!.id]);
      // One write statement in flight per process: a statement held on `gate` makes the six calls
      // below queue, so that they then share one statement, which takes a and waits for b.
      await other.query('BEGIN');
      await other.query(`SELECT id FROM "License" WHERE id = $1 FOR UPDATE`, [gate.id]);
      const first = activateDevice(s, { key: gate.key, fingerprint: 'dl-gate' });
      await waitForLockWaiters(conn, 1);
      const pending = Promise.all([
        ...[1, 2, 3].map((i) => activateDevice(s, { key: a!.key, fingerprint: `dl-a-${i}` })),
        ...[1, 2, 3].map((i) => activateDevice(s, { key: b!.key, fingerprint: `dl-b-${i}` })),
      ]);
      await new Promise((resolve) => setTimeout(resolve, 200));
      await other.query('COMMIT');
      expect((await first).__typename).toBe('ActivateSuccess');
      await waitForLockWaiters(conn, 1);
      await conn.query(`SELECT id FROM "License" WHERE id = $1 FOR UPDATE`, [a!.id]);
      await conn.query('COMMIT');
      const results = await pending;
      expect(results.map((r) => r.__typename)).toEqual(Array(6).fill('ActivateSuccess'));
      expect((await licenseRow(a!.id)).activationsUsed + (await licenseRow(b!.id)).activationsUsed).toBe(6);
    } finally {
      await conn.query('RESET deadlock_timeout');
      await other.end();
    }
  });

  it('a device refused by a unique index in the middle of a batch costs the devices after it no slot', async () => {
    const l = await issue(s, token, { maxActivations: 2, goodwillActivations: 1 });
    const ctx = { app: s.app.deps, prisma: s.app.deps.prisma, actor: { kind: 'anonymous' as const }, requestId: 'test' };
    try {
      // Another instance is activating device x on the license: it holds the license's row, and x's row
      // is not committed yet.
      await conn.query('BEGIN');
      await conn.query(`UPDATE "License" SET "activationsUsed" = "activationsUsed" + 1 WHERE id = $1`, [l.id]);
      await conn.query(
        `INSERT INTO "Activation" (id, "tenantId", "licenseId", "productId", "customerId", fingerprint, "activeFingerprint", status)
         SELECT gen_random_uuid(), "tenantId", id, "productId", "customerId", 'x', 'x', 'ACTIVE' FROM "License" WHERE id = $1`,
        [l.id],
      );
      // x, y and z called in one tick share one batched statement, which waits for the license's row.
      const pending = Promise.all(['x', 'y', 'z'].map((fingerprint) => activate(ctx, { key: l.key, fingerprint })));
      await waitForLockWaiters(conn, 1);
      await conn.query('COMMIT');
      // x is live now (its row refused in the statement): reused. Of y and z, one takes the second
      // slot, within the limit, and the other the third, the goodwill one (not both: goodwill).
      const [x, y, z] = await pending;
      expect(x!.reused).toBe(true);
      expect([y!.goodwill, z!.goodwill].sort()).toEqual([false, true]);
      expect(await licenseRow(l.id)).toMatchObject({ activationsUsed: 3 });
      expect(await events('compliance.goodwill_used', l.id)).toHaveLength(1);
    } finally {
      await conn.query('ROLLBACK').catch(() => {});
    }
  });

  it('an activation on the one-call path caught in a deadlock runs again instead of failing', async () => {
    const l = await issue(s, token, { maxActivations: 3 }, { tokenCount: 1 });
    try {
      // The other party holds the token key's row and then asks for the license's, which the activation
      // (a token key takes the one-call path) locked first. It never checks for the deadlock itself, so
      // the activation's transaction is the one aborted; Prisma reports that as a write conflict (P2034).
      await conn.query(`SET deadlock_timeout = '10s'`);
      await conn.query('BEGIN');
      await conn.query(`SELECT id FROM "TokenKey" WHERE "licenseId" = $1 FOR UPDATE`, [l.id]);
      const pending = activateDevice(s, { key: l.tokenKeys[0], fingerprint: 'tok-device' });
      await waitForLockWaiters(conn, 1);
      await conn.query(`SELECT id FROM "License" WHERE id = $1 FOR UPDATE`, [l.id]);
      await conn.query('COMMIT');
      expect(await pending).toMatchObject({ __typename: 'ActivateSuccess', reused: false });
      expect(await licenseRow(l.id)).toMatchObject({ activationsUsed: 1 });
    } finally {
      await conn.query('ROLLBACK').catch(() => {});
      await conn.query('RESET deadlock_timeout');
    }
  });

  it('a new device activating while the license gets new terms is activated on them, not left behind a license in sync', async () => {
    for (const client of [undefined, { appVersion: '1.0.0' }]) {
      // Without and with a version rule: the lookup-and-insert statement, and the insert after the rules.
      const l = await issue(s, token, { maxActivations: 3, ...(client ? { allowedVersions: '>=1.0.0' } : {}) });
      const before = (await licenseRow(l.id)).revision;
      await conn.query('BEGIN');
      // As updateLicense writes a license with no live device: new terms, a new revision, in sync.
      await conn.query(`UPDATE "License" SET "maxActivations" = 4, revision = revision + 1, "syncState" = 'SYNCED' WHERE id = $1`, [l.id]);
      const pending = activateDevice(s, { key: l.key, fingerprint: 'during-change', client });
      await waitForLockWaiters(conn, 1);
      await conn.query('COMMIT');
      const result = await pending;
      expect(result.__typename).toBe('ActivateSuccess');
      const claims = JSON.parse(Buffer.from(result.token.split('.')[1], 'base64url').toString());
      expect(claims).toMatchObject({ revision: before + 1, maxActivations: 4 });
      const row = await s.db.prisma.activation.findFirstOrThrow({ where: { licenseId: l.id, status: 'ACTIVE' } });
      expect(row.syncedRevision).toBe(before + 1);
      expect(await licenseRow(l.id)).toMatchObject({ activationsUsed: 1, syncState: 'SYNCED', revision: before + 1 });
    }
  });

  it('a heartbeat bringing a device in sync and a deactivation wait for the license before they touch the device', async () => {
    const l = await issue(s, token, { maxActivations: 3 });
    for (const fp of ['in-sync', 'leaving']) expect((await activateDevice(s, { key: l.key, fingerprint: fp })).__typename).toBe('ActivateSuccess');
    expect(ok(await s.gql(UPDATE_LICENSE, { input: { licenseId: l.globalId, maxActivations: 4 } }, { token })).updateLicense).toMatchObject({ syncState: 'PENDING_SYNC' });
    try {
      // The other party locks the license and then writes its devices, as the inactivity sweep and
      // activations do. It never checks for a deadlock itself, so a call that took a device's row
      // first and then waited for the license would be the one aborted, with an internal error.
      await conn.query(`SET deadlock_timeout = '10s'`);
      await conn.query('BEGIN');
      await conn.query(`SELECT id FROM "License" WHERE id = $1 FOR UPDATE`, [l.id]);
      const pending = Promise.all([
        heartbeatDevice(s, { key: l.key, fingerprint: 'in-sync' }),
        deactivateDevice(s, { key: l.key, fingerprint: 'leaving' }),
      ]);
      await waitForLockWaiters(conn, 2);
      // Past the server's deadlock_timeout (1 s), so a circle would have been found and broken.
      await conn.query(`UPDATE "Activation" SET "lastHeartbeatAt" = now() WHERE "licenseId" = $1`, [l.id]);
      await new Promise((resolve) => setTimeout(resolve, 1500));
      await conn.query('COMMIT');
      const [beat, left] = await pending;
      expect(beat).toMatchObject({ __typename: 'HeartbeatSuccess', updateAvailable: true });
      expect(left.__typename).toBe('DeactivateSuccess');
      expect(await licenseRow(l.id)).toMatchObject({ activationsUsed: 1, syncState: 'SYNCED' });
    } finally {
      await conn.query('ROLLBACK').catch(() => {});
      await conn.query('RESET deadlock_timeout');
    }
  });
});
