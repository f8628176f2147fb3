import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ok, startTestServer, type TestServer } from '../../../test/harness.ts';
import { sealerOf } from '../audit/chain.ts';
import { ValidationError } from '../../errors.ts';
import { complianceIdle, setComplianceSettings } from './service.ts';
import { sweepCompliance } from './sweeps.ts';

const DAY = 86_400_000;
const HOUR = 3_600_000;

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer();
});
afterAll(() => s.close());

const raw = (globalId: string) => Buffer.from(globalId, 'base64').toString().split(':')[1]!;

/**
 * A tenant with a subscription edition whose devices heartbeat hourly. Licenses expire 60+ days out and
 * devices lapse after two hours, so the server's own sweep (real time, every 30 s) never raises what
 * these tests raise with a chosen `now`.
 */
async function fixture() {
  const t = await s.tenant();
  const gql = (q: string, v: Record<string, unknown> = {}) => s.gql(q, v, { token: t.token }).then(ok);
  const productId = (await gql(`mutation { createProduct(input: { name: "CAD", code: "cad" }) { ... on Product { id } } }`)).createProduct.id;
  const editionId = (
    await gql(`mutation($input: CreateEditionInput!) { createEdition(input: $input) { __typename ... on Edition { id } } }`, {
      input: { productId, name: 'Sub', code: 'sub', licenseType: 'SUBSCRIPTION', validityDays: 365, maxActivations: 5, heartbeatSeconds: 3600 },
    })
  ).createEdition.id;
  const customerId = (await gql(`mutation { createCustomer(input: { name: "Initech" }) { ... on Customer { id } } }`)).createCustomer.id;
  async function license(extra: Record<string, unknown> = {}) {
    const r = await gql(`mutation($input: CreateLicenseInput!) { createLicense(input: $input) { __typename ... on CreateLicensePayload { license { id key expiresAt } } } }`, {
      input: { editionId, customerId, ...extra },
    });
    expect(r.createLicense.__typename).toBe('CreateLicensePayload');
    const l = r.createLicense.license as { id: string; key: string; expiresAt: string };
    return { ...l, raw: raw(l.id), expiresAt: new Date(l.expiresAt) };
  }
  return { t, gql, customerId, license };
}

async function activate(key: string, fingerprint: string) {
  const r = ok(await s.gql(`mutation($input: ActivateInput!) { activate(input: $input) { __typename ... on ActivateSuccess { activation { id } } } }`, { input: { key, fingerprint } }));
  expect(r.activate.__typename).toBe('ActivateSuccess');
  return raw(r.activate.activation.id);
}

async function heartbeat(key: string, fingerprint: string) {
  const r = ok(await s.gql(`mutation($input: HeartbeatInput!) { heartbeat(input: $input) { __typename } }`, { input: { key, fingerprint } }));
  expect(r.heartbeat.__typename).toBe('HeartbeatSuccess');
}

async function lastSeen(activationId: string): Promise<Date> {
  const a = await s.db.prisma.activation.findUniqueOrThrow({ where: { id: activationId } });
  return a.lastHeartbeatAt ?? a.activatedAt;
}

/** Two sweeps at once (real concurrency on PostgreSQL): together they must raise each alert once. */
const sweepTwice = (now: Date) => Promise.all([sweepCompliance(s.app.deps, now), sweepCompliance(s.app.deps, now)]);

async function events(tenantId: string, where: { licenseId?: string; subjectId?: string; type?: string } = {}) {
  await sealerOf(s.app.deps).seal(tenantId);
  await complianceIdle(s.app.deps);
  const rows = await s.db.prisma.auditEvent.findMany({
    where: {
      tenantId,
      type: where.type ?? { in: ['compliance.license_expiring', 'compliance.license_expired', 'compliance.heartbeat_timeout'] },
      ...(where.licenseId ? { licenseId: where.licenseId } : {}),
      ...(where.subjectId ? { subjectId: where.subjectId } : {}),
    },
    orderBy: { id: 'asc' },
  });
  return rows;
}

const label = (e: { type: string; payload: unknown }) => {
  const p = e.payload as { leadDays?: number; daysLeft?: number };
  return e.type === 'compliance.license_expiring' ? `expiring:${p.leadDays}:${p.daysLeft}` : e.type.replace('compliance.', '');
};

describe('expiring-soon and expired alerts', () => {
  it('raises each lead time once per expiry date, the expiry once, and again after a renewal', async () => {
    const f = await fixture();
    const lic = await f.license({ expiresAt: new Date(Date.now() + 90 * DAY).toISOString() });
    const E = lic.expiresAt.getTime();
    const at = (ms: number) => new Date(E - ms);

    await sweepTwice(at(31 * DAY));
    expect((await events(f.t.id, { licenseId: lic.raw })).map(label)).toEqual([]);
    await sweepTwice(at(20 * DAY));
    await sweepTwice(at(20 * DAY - HOUR));
    expect((await events(f.t.id, { licenseId: lic.raw })).map(label)).toEqual(['expiring:30:20']);
    await sweepTwice(at(5 * DAY));
    await sweepTwice(at(12 * HOUR));
    await sweepTwice(at(-HOUR));
    await sweepTwice(at(-2 * HOUR));
    const all = await events(f.t.id, { licenseId: lic.raw });
    expect(all.map(label)).toEqual(['expiring:30:20', 'expiring:7:5', 'expiring:1:1', 'license_expired']);
    expect(all[0]).toMatchObject({ subjectType: 'License', subjectId: lic.raw, licenseId: lic.raw, actorType: 'system', customerId: raw(f.customerId) });
    expect(all[0]!.payload).toMatchObject({ licenseId: lic.raw, customerId: raw(f.customerId), expiresAt: lic.expiresAt.toISOString(), daysLeft: 20 });
    // Written to the hash-chained audit log like every other event.
    expect(all.every((e) => e.seq !== null && e.hash)).toBe(true);

    // A renewal moves the expiry: the lead times fire again as the new date approaches.
    const renewed = await f.gql(`mutation($input: RenewLicenseInput!) { renewLicense(input: $input) { __typename ... on License { expiresAt } } }`, {
      input: { licenseId: lic.id, extendDays: 30 },
    });
    const E2 = new Date(renewed.renewLicense.expiresAt).getTime();
    expect(E2).toBe(E + 30 * DAY);
    await sweepTwice(new Date(E2 - 25 * DAY));
    await sweepTwice(new Date(E2 + HOUR));
    expect((await events(f.t.id, { licenseId: lic.raw })).map(label)).toEqual([
      'expiring:30:20',
      'expiring:7:5',
      'expiring:1:1',
      'license_expired',
      'expiring:30:25',
      'license_expired',
    ]);
  });

  it('uses a license’s own lead days over the tenant’s, and none when turned off', async () => {
    const f = await fixture();
    const own = await f.license({ expiresAt: new Date(Date.now() + 80 * DAY).toISOString() });
    const tenantWide = await f.license({ expiresAt: new Date(Date.now() + 80 * DAY).toISOString() });
    // The tenant turns expiring-soon alerts off; one license keeps lead times of its own.
    const off = await f.gql(`mutation { setComplianceSettings(input: { expiringLeadDays: [] }) { __typename ... on ComplianceSettings { expiringLeadDays leadDaysOverridden } } }`);
    expect(off.setComplianceSettings).toEqual({ __typename: 'ComplianceSettings', expiringLeadDays: [], leadDaysOverridden: true });
    const set = await f.gql(`mutation($input: SetComplianceSettingsInput!) { setComplianceSettings(input: $input) { __typename ... on ComplianceSettings { licenseId expiringLeadDays leadDaysOverridden } } }`, {
      input: { licenseId: own.id, expiringLeadDays: [3, 10, 10] },
    });
    expect(set.setComplianceSettings).toEqual({ __typename: 'ComplianceSettings', licenseId: own.id, expiringLeadDays: [10, 3], leadDaysOverridden: true });
    const E = own.expiresAt.getTime();
    await sweepTwice(new Date(E - 20 * DAY));
    expect((await events(f.t.id, { licenseId: own.raw })).map(label)).toEqual([]);
    await sweepTwice(new Date(E - 9 * DAY));
    await sweepTwice(new Date(E - 2 * DAY));
    expect((await events(f.t.id, { licenseId: own.raw })).map(label)).toEqual(['expiring:10:9', 'expiring:3:2']);
    await sweepTwice(new Date(tenantWide.expiresAt.getTime() - 12 * HOUR));
    expect((await events(f.t.id, { licenseId: tenantWide.raw })).map(label)).toEqual([]);
    const view = await f.gql(`query($id: ID) { complianceSettings(licenseId: $id) { expiringLeadDays leadDaysOverridden } }`, { id: tenantWide.id });
    expect(view.complianceSettings).toEqual({ expiringLeadDays: [], leadDaysOverridden: false });
  });

  it('does not raise for revoked licenses', async () => {
    const f = await fixture();
    const lic = await f.license({ expiresAt: new Date(Date.now() + 70 * DAY).toISOString() });
    await f.gql(`mutation($input: LicenseIdInput!) { revokeLicense(input: $input) { __typename } }`, { input: { licenseId: lic.id } });
    await sweepTwice(new Date(lic.expiresAt.getTime() - 2 * DAY));
    await sweepTwice(new Date(lic.expiresAt.getTime() + HOUR));
    expect(await events(f.t.id, { licenseId: lic.raw })).toEqual([]);
  });
});

describe('heartbeat timeouts', () => {
  it('raises once per lapse, after the interval plus one interval of tolerance, and again after a new lapse', async () => {
    const f = await fixture();
    const lic = await f.license();
    const id = await activate(lic.key, 'h1');
    const seen = (await lastSeen(id)).getTime();
    await sweepTwice(new Date(seen + 1.5 * HOUR)); // inside the tolerance
    expect(await events(f.t.id, { subjectId: id })).toEqual([]);
    await sweepTwice(new Date(seen + 2 * HOUR + 1000));
    await sweepTwice(new Date(seen + 3 * HOUR));
    let timeouts = await events(f.t.id, { subjectId: id });
    expect(timeouts.map(label)).toEqual(['heartbeat_timeout']);
    expect(timeouts[0]).toMatchObject({ subjectType: 'Activation', licenseId: lic.raw, customerId: raw(f.customerId), actorType: 'system' });
    expect(timeouts[0]!.payload).toMatchObject({ activationId: id, fingerprint: 'h1', lastSeenAt: new Date(seen).toISOString(), heartbeatSeconds: 3600 });

    // The device heartbeats again, then lapses again: a new alert.
    await heartbeat(lic.key, 'h1');
    const again = (await lastSeen(id)).getTime();
    expect(again).toBeGreaterThanOrEqual(seen);
    await sweepTwice(new Date(again + 2 * HOUR + 1000));
    await sweepTwice(new Date(again + 5 * HOUR));
    timeouts = await events(f.t.id, { subjectId: id });
    expect(timeouts.map(label)).toEqual(['heartbeat_timeout', 'heartbeat_timeout']);
    expect((timeouts[1]!.payload as { lastSeenAt: string }).lastSeenAt).toBe(new Date(again).toISOString());
  });

  it('skips released and inactive devices', async () => {
    const f = await fixture();
    const lic = await f.license();
    const released = await activate(lic.key, 'gone');
    const inactive = await activate(lic.key, 'idle');
    const r = ok(await s.gql(`mutation($input: DeactivateInput!) { deactivate(input: $input) { __typename } }`, { input: { key: lic.key, fingerprint: 'gone' } }));
    expect(r.deactivate.__typename).toBe('DeactivateSuccess');
    await s.db.prisma.activation.update({ where: { id: inactive }, data: { status: 'INACTIVE', activeFingerprint: null } });
    await sweepTwice(new Date(Date.now() + 10 * HOUR));
    expect(await events(f.t.id, { subjectId: released })).toEqual([]);
    expect(await events(f.t.id, { subjectId: inactive })).toEqual([]);
  });

  it('follows the tenant’s tolerance', async () => {
    const f = await fixture();
    const lic = await f.license();
    const set = await f.gql(`mutation { setComplianceSettings(input: { heartbeatTolerancePercent: 0 }) { __typename ... on ComplianceSettings { heartbeatTolerancePercent expiringLeadDays } } }`);
    expect(set.setComplianceSettings).toEqual({ __typename: 'ComplianceSettings', heartbeatTolerancePercent: 0, expiringLeadDays: [30, 7, 1] });
    const id = await activate(lic.key, 'strict');
    const seen = (await lastSeen(id)).getTime();
    await sweepTwice(new Date(seen + HOUR + 1000));
    expect((await events(f.t.id, { subjectId: id })).map(label)).toEqual(['heartbeat_timeout']);
  });

  it('raises 10,000 lapses in one pass, each once, with two sweeps at once', async () => {
    const f = await fixture();
    const lic = await f.license();
    const seen = new Date(Date.now() - 3 * HOUR);
    await s.db.prisma.$executeRaw`
      INSERT INTO "Activation" (id, "tenantId", "licenseId", "productId", "customerId", fingerprint, "activeFingerprint", status, "activatedAt", "lastHeartbeatAt")
      SELECT gen_random_uuid(), ${f.t.id}::uuid, l.id, l."productId", l."customerId", 'bulk-' || i, 'bulk-' || i, 'ACTIVE'::"ActivationStatus",
             ${seen}::timestamp(3), ${seen}::timestamp(3)
        FROM "License" l, generate_series(1, 10000) i WHERE l.id = ${lic.raw}::uuid`;
    const [a, b] = await sweepTwice(new Date());
    expect(a.heartbeatTimeouts + b.heartbeatTimeouts).toBe(10_000);
    expect(await s.db.prisma.auditEvent.count({ where: { tenantId: f.t.id, licenseId: lic.raw, type: 'compliance.heartbeat_timeout' } })).toBe(10_000);
    const again = await sweepCompliance(s.app.deps, new Date(Date.now() + HOUR));
    expect(again.heartbeatTimeouts).toBe(0);
  });
});

describe('tenant isolation', () => {
  it('raises each tenant’s alerts in its own log and keeps settings apart', async () => {
    const a = await fixture();
    const b = await fixture();
    const la = await a.license();
    const lb = await b.license();
    const ia = await activate(la.key, 'same-device');
    const ib = await activate(lb.key, 'same-device');
    await a.gql(`mutation { setComplianceSettings(input: { heartbeatTolerancePercent: 0, expiringLeadDays: [5] }) { __typename } }`);
    const seen = Math.max((await lastSeen(ia)).getTime(), (await lastSeen(ib)).getTime());
    await sweepTwice(new Date(seen + HOUR + 1000)); // past tenant a's tolerance, inside tenant b's
    expect((await events(a.t.id)).map((e) => e.subjectId)).toEqual([ia]);
    expect(await events(b.t.id)).toEqual([]);

    // b cannot read or change a's license settings.
    const view = ok(await s.gql(`query($id: ID) { complianceSettings(licenseId: $id) { expiringLeadDays } }`, { id: la.id }, { token: b.t.token }));
    expect(view.complianceSettings).toBeNull();
    const write = ok(await s.gql(`mutation($input: SetComplianceSettingsInput!) { setComplianceSettings(input: $input) { __typename } }`, {
      input: { licenseId: la.id, expiringLeadDays: [2] },
    }, { token: b.t.token }));
    expect(write.setComplianceSettings.__typename).toBe('NotFoundError');
    const own = ok(await s.gql(`query { complianceSettings { expiringLeadDays heartbeatTolerancePercent } }`, {}, { token: b.t.token }));
    expect(own.complianceSettings).toEqual({ expiringLeadDays: [30, 7, 1], heartbeatTolerancePercent: 100 });
  });
});

describe('compliance summary', () => {
  const SUMMARY = `query($licenseId: ID) { complianceSummary(licenseId: $licenseId) {
    status warning licenses { status reasons heartbeatTimeouts expiringLeadDays expiresAt } } }`;

  it('warns for a license inside a lead time and for devices past their heartbeat', async () => {
    const f = await fixture();
    const calm = await f.license({ expiresAt: new Date(Date.now() + 60 * DAY).toISOString() });
    const soon = await f.license({ expiresAt: new Date(Date.now() + 5 * DAY).toISOString() });
    const quiet = await f.license({ expiresAt: new Date(Date.now() + 60 * DAY).toISOString() });
    await activate(calm.key, 'fresh');
    const lapsed = await activate(quiet.key, 'silent');
    await s.db.prisma.activation.update({ where: { id: lapsed }, data: { lastHeartbeatAt: new Date(Date.now() - 3 * HOUR) } });
    const of = async (id: string) => ok(await s.gql(SUMMARY, { licenseId: id }, { token: f.t.token })).complianceSummary;

    expect(await of(calm.id)).toMatchObject({ status: 'OK', licenses: [{ status: 'OK', reasons: [], heartbeatTimeouts: 0, expiringLeadDays: [30, 7, 1] }] });
    expect(await of(soon.id)).toMatchObject({ status: 'WARNING', licenses: [{ status: 'WARNING', reasons: ['expires within 7 days'] }] });
    expect(await of(quiet.id)).toMatchObject({
      status: 'WARNING',
      licenses: [{ status: 'WARNING', reasons: ['1 device past the heartbeat interval'], heartbeatTimeouts: 1 }],
    });
    // A tolerance of ten intervals puts the device back within it.
    await f.gql(`mutation { setComplianceSettings(input: { heartbeatTolerancePercent: 1000 }) { __typename } }`);
    expect(await of(quiet.id)).toMatchObject({ status: 'OK', licenses: [{ heartbeatTimeouts: 0 }] });
  });
});

describe('compliance settings validation', () => {
  const SET = `mutation($input: SetComplianceSettingsInput!) { setComplianceSettings(input: $input) {
    __typename ... on ValidationError { fields { path message } } } }`;

  it('refuses bad lead days and tolerances, changing nothing', async () => {
    const f = await fixture();
    const lic = await f.license();
    await f.gql(`mutation { setComplianceSettings(input: { expiringLeadDays: [14, 2], heartbeatTolerancePercent: 50 }) { __typename } }`);
    const bad = [
      { expiringLeadDays: [-1], heartbeatTolerancePercent: 10 },
      { expiringLeadDays: [0] },
      { expiringLeadDays: [366] },
      { expiringLeadDays: Array.from({ length: 10_000 }, (_, i) => (i % 365) + 1) },
      { heartbeatTolerancePercent: -5 },
      { heartbeatTolerancePercent: 1001, expiringLeadDays: [3] },
      { licenseId: lic.id, heartbeatTolerancePercent: 10 },
    ];
    for (const input of bad) {
      const r = ok(await s.gql(SET, { input }, { token: f.t.token }));
      expect(r.setComplianceSettings.__typename, JSON.stringify(input).slice(0, 80)).toBe('ValidationError');
      expect(r.setComplianceSettings.fields.length).toBeGreaterThan(0);
    }
    // Not an Int: refused by GraphQL before the service runs; the service refuses it too.
    const fraction = await s.gql(SET, { input: { expiringLeadDays: [1.5] } }, { token: f.t.token });
    expect(fraction.errors?.length).toBeGreaterThan(0);
    const ctx = { app: s.app.deps, prisma: s.app.deps.prisma, actor: { kind: 'operator' as const, tenantId: f.t.id }, requestId: 'test' };
    await expect(setComplianceSettings(ctx, f.t.id, { licenseId: null, expiringLeadDays: [1.5] })).rejects.toBeInstanceOf(ValidationError);
    await expect(setComplianceSettings(ctx, f.t.id, { licenseId: null, heartbeatTolerancePercent: 2.5 })).rejects.toBeInstanceOf(ValidationError);

    const now = ok(await s.gql(`query { complianceSettings { expiringLeadDays heartbeatTolerancePercent } }`, {}, { token: f.t.token }));
    expect(now.complianceSettings).toEqual({ expiringLeadDays: [14, 2], heartbeatTolerancePercent: 50 });
    const own = ok(await s.gql(`query($id: ID) { complianceSettings(licenseId: $id) { expiringLeadDays leadDaysOverridden } }`, { id: lic.id }, { token: f.t.token }));
    expect(own.complianceSettings).toEqual({ expiringLeadDays: [14, 2], leadDaysOverridden: false });
  });

  it('needs the ADMIN role to change settings', async () => {
    const f = await fixture();
    const token = ok(await s.gql(`mutation { createApiToken(input: { name: "ro", role: READ_ONLY }) { __typename ... on CreateApiTokenPayload { token } } }`, {}, { token: f.t.token }));
    const ro = token.createApiToken.token as string;
    const r = await s.gql(`mutation { setComplianceSettings(input: { heartbeatTolerancePercent: 5 }) { __typename } }`, {}, { token: ro });
    expect(r.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
  });
});

describe('a device back from a heartbeat timeout', () => {
  /** The device was last seen `ms` ago. */
  const silence = (activationId: string, ms: number) => s.db.prisma.activation.update({ where: { id: activationId }, data: { lastHeartbeatAt: new Date(Date.now() - ms) } });
  async function beat(key: string, fingerprint: string, client?: Record<string, string>) {
    const r = ok(await s.gql(`mutation($input: HeartbeatInput!) { heartbeat(input: $input) { __typename } }`, { input: { key, fingerprint, ...(client ? { client } : {}) } }));
    expect(r.heartbeat.__typename).toBe('HeartbeatSuccess');
  }
  const resumed = async (tenantId: string, activationId: string) =>
    (await events(tenantId, { subjectId: activationId, type: 'device.heartbeat' })).map((e) => (e.payload as { resumed?: boolean }).resumed ?? false);

  it('says so in its heartbeat event (resumed), whichever way the heartbeat is recorded; an ordinary heartbeat does not', async () => {
    const f = await fixture();
    // The common heartbeat, recorded with its lookup in one statement.
    const lic = await f.license();
    const id = await activate(lic.key, 'back');
    await beat(lic.key, 'back');
    await silence(id, 1.5 * HOUR); // late, but inside the tolerance (one more interval)
    await beat(lic.key, 'back');
    await silence(id, 2 * HOUR + 60_000);
    await beat(lic.key, 'back');
    await beat(lic.key, 'back');
    expect(await resumed(f.t.id, id)).toEqual([false, false, true, false]);

    // A license with changes the device picks up on this heartbeat.
    const pending = await f.license();
    const pendingId = await activate(pending.key, 'sync');
    const updated = await f.gql(`mutation($input: UpdateLicenseInput!) { updateLicense(input: $input) { __typename ... on License { syncState } } }`, {
      input: { licenseId: pending.id, maxActivations: 6 },
    });
    expect(updated.updateLicense).toEqual({ __typename: 'License', syncState: 'PENDING_SYNC' });
    await silence(pendingId, 3 * HOUR);
    await beat(pending.key, 'sync');
    expect(await resumed(f.t.id, pendingId)).toEqual([true]);

    // A license with a version rule, checked before the heartbeat is recorded.
    const ranged = await f.license({ allowedVersions: '>=1.0.0' });
    const activated = ok(
      await s.gql(`mutation($input: ActivateInput!) { activate(input: $input) { __typename ... on ActivateSuccess { activation { id } } ... on LicensingError { code } } }`, {
        input: { key: ranged.key, fingerprint: 'ranged', client: { appVersion: '1.2.0' } },
      }),
    );
    expect(activated.activate.__typename).toBe('ActivateSuccess');
    const rangedId = raw(activated.activate.activation.id);
    await silence(rangedId, 3 * HOUR);
    await beat(ranged.key, 'ranged', { appVersion: '1.2.0' });
    await beat(ranged.key, 'ranged', { appVersion: '1.2.0' });
    expect(await resumed(f.t.id, rangedId)).toEqual([true, false]);
  });

  it('follows the tenant’s tolerance', async () => {
    const f = await fixture();
    const set = await f.gql(`mutation { setComplianceSettings(input: { heartbeatTolerancePercent: 0 }) { __typename } }`);
    expect(set.setComplianceSettings.__typename).toBe('ComplianceSettings');
    const lic = await f.license();
    const id = await activate(lic.key, 'strict');
    await silence(id, 1.5 * HOUR); // past the interval, and no tolerance
    await beat(lic.key, 'strict');
    expect(await resumed(f.t.id, id)).toEqual([true]);
  });
});
