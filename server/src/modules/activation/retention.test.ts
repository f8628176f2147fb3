import { decodeGlobalID } from '@pothos/plugin-relay';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ok, startTestServer, testEnv, type TestServer } from '../../../test/harness.ts';
import { loadConfig } from '../../config.ts';
import { activateDevice, heartbeatDevice, issue } from './fixtures.ts';
import { pruneHeartbeats, startHeartbeatPruning } from './retention.ts';

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer();
});
afterAll(() => s.close());

const DAY = 86_400_000;
const DEVICE = `query($id: ID!) { node(id: $id) { ... on Activation { lastHeartbeatAt appVersion heartbeats(last: 50) { at appVersion } } } }`;

/** A tenant with one device that heartbeated `beats` times through the API, and `old` samples of it backdated by `ageDays`. */
async function deviceWithHistory(beats: number, old: number, ageDays: number) {
  const { id: tenantId, token } = await s.tenant();
  const l = await issue(s, token, { maxActivations: 5 });
  const a = await activateDevice(s, { key: l.key, fingerprint: 'dev-1' });
  for (let i = 0; i < beats; i++) {
    expect(await heartbeatDevice(s, { key: l.key, fingerprint: 'dev-1', client: { appVersion: `1.0.${i}` } })).toMatchObject({ __typename: 'HeartbeatSuccess' });
  }
  const activationId = decodeGlobalID(a.activation.id).id;
  // What months of heartbeats leave behind, written directly: the same rows, dated in the past.
  await s.db.sql.query(
    `INSERT INTO "HeartbeatSample" ("tenantId", "licenseId", "activationId", at, "appVersion")
     SELECT $1::uuid, $2::uuid, $3::uuid, now() - make_interval(days => $4::int) - make_interval(secs => g), '0.9.0' FROM generate_series(1, $5::int) g`,
    [tenantId, l.id, activationId, ageDays, old],
  );
  return { tenantId, token, activationId, globalId: a.activation.id as string };
}

const count = async (tenantId: string, where = 'TRUE') =>
  (await s.db.sql.query<{ n: number }>(`SELECT count(*)::int AS n FROM "HeartbeatSample" WHERE "tenantId" = $1::uuid AND ${where}`, [tenantId]))[0]!.n;
const auditRows = async (tenantId: string) => s.db.prisma.auditEvent.count({ where: { tenantId } });

describe('heartbeat retention', () => {
  it('deletes the samples past retention of every tenant, in batches, and nothing else', async () => {
    const a = await deviceWithHistory(3, 25_000, 120); // more than two batches
    const b = await deviceWithHistory(2, 40, 91);
    const c = await deviceWithHistory(2, 30, 60); // within retention
    const before = await Promise.all([a, b, c].map((t) => s.db.prisma.activation.findUniqueOrThrow({ where: { id: t.activationId } })));
    const audit = await Promise.all([a, b, c].map((t) => auditRows(t.tenantId)));

    const deleted = await pruneHeartbeats(s.app.deps, new Date(Date.now() - 90 * DAY));

    expect(deleted).toBe(25_040);
    expect(await count(a.tenantId)).toBe(3);
    expect(await count(b.tenantId)).toBe(2);
    expect(await count(c.tenantId)).toBe(32);
    expect(await count(a.tenantId, `at < now() - interval '90 days'`)).toBe(0);
    // The device's current state and the audit log are not retention's business.
    const after = await Promise.all([a, b, c].map((t) => s.db.prisma.activation.findUniqueOrThrow({ where: { id: t.activationId } })));
    expect(after).toEqual(before);
    expect(await Promise.all([a, b, c].map((t) => auditRows(t.tenantId)))).toEqual(audit);
    // Operators see what is left: the recent series, newest first.
    const device = ok(await s.gql(DEVICE, { id: a.globalId }, { token: a.token })).node;
    expect(device.appVersion).toBe('1.0.2');
    expect(device.heartbeats.map((h: { appVersion: string }) => h.appVersion)).toEqual(['1.0.2', '1.0.1', '1.0.0']);

    // A second pass finds nothing to do.
    expect(await pruneHeartbeats(s.app.deps, new Date(Date.now() - 90 * DAY))).toBe(0);
  });

  it('passes running at once (instances pruning together) delete each row once', async () => {
    const t = await deviceWithHistory(1, 12_000, 100);
    const cutoff = new Date(Date.now() - 90 * DAY);
    const counts = await Promise.all([pruneHeartbeats(s.app.deps, cutoff), pruneHeartbeats(s.app.deps, cutoff), pruneHeartbeats(s.app.deps, cutoff)]);
    expect(counts.reduce((x, y) => x + y, 0)).toBe(12_000);
    expect(await count(t.tenantId)).toBe(1);
  });

  it('runs on its timer and reports what it deleted; 0 days keeps everything', async () => {
    const t = await deviceWithHistory(1, 50, 31);
    const reports: number[] = [];
    const errors: Error[] = [];
    const kept = startHeartbeatPruning(s.app.deps, 0, { pruned: (n) => reports.push(n), failed: (e) => errors.push(e) }, 20);
    await new Promise((r) => setTimeout(r, 200));
    await kept.stop();
    expect(await count(t.tenantId)).toBe(51);

    const pruning = startHeartbeatPruning(s.app.deps, 30, { pruned: (n) => reports.push(n), failed: (e) => errors.push(e) }, 20);
    for (let i = 0; i < 200 && (await count(t.tenantId)) > 1; i++) await new Promise((r) => setTimeout(r, 25));
    await pruning.stop();
    expect(errors).toEqual([]);
    expect(await count(t.tenantId)).toBe(1);
    // Other tenants' older samples (earlier tests) may be in the first report; this tenant's 50 are in the sum.
    expect(reports.reduce((x, y) => x + y, 0)).toBeGreaterThanOrEqual(50);
  });

  it('activation idempotency records are forgotten after a day (samples kept forever or not); a retry then is decided afresh', async () => {
    const { token } = await s.tenant();
    const l = await issue(s, token, { maxActivations: 5 });
    const first = await activateDevice(s, { key: l.key, fingerprint: 'idem-old', idempotencyKey: 'old-request' });
    await activateDevice(s, { key: l.key, fingerprint: 'idem-new', idempotencyKey: 'new-request' });
    await s.db.sql.query(`UPDATE "IdempotencyRecord" SET "createdAt" = now() - interval '25 hours' WHERE key = 'old-request'`);
    const keys = async () => (await s.db.prisma.idempotencyRecord.findMany({ where: { key: { in: ['old-request', 'new-request'] } } })).map((r) => r.key).sort();
    const errors: Error[] = [];
    const pruning = startHeartbeatPruning(s.app.deps, 0, { pruned: () => {}, failed: (e) => errors.push(e) }, 20);
    for (let i = 0; i < 200 && (await keys()).length > 1; i++) await new Promise((r) => setTimeout(r, 25));
    await pruning.stop();
    expect(errors).toEqual([]);
    expect(await keys()).toEqual(['new-request']);
    // Forgotten, the key no longer replays the first answer; the device is live, so it is reused and costs nothing.
    const retry = await activateDevice(s, { key: l.key, fingerprint: 'idem-old', idempotencyKey: 'old-request' });
    expect(retry).toMatchObject({ __typename: 'ActivateSuccess', reused: true, activation: { id: first.activation.id } });
    expect((await s.db.prisma.license.findUniqueOrThrow({ where: { id: l.id } })).activationsUsed).toBe(2);
  });

  it('TESSERA_HEARTBEAT_RETENTION_DAYS: 90 by default; a negative or fractional value is refused at start', () => {
    const { TESSERA_HEARTBEAT_RETENTION_DAYS: _, ...env } = testEnv;
    expect(loadConfig(env).heartbeatRetentionDays).toBe(90);
    expect(loadConfig({ ...env, TESSERA_HEARTBEAT_RETENTION_DAYS: '0' }).heartbeatRetentionDays).toBe(0);
    expect(loadConfig({ ...env, TESSERA_HEARTBEAT_RETENTION_DAYS: '365' }).heartbeatRetentionDays).toBe(365);
    for (const bad of ['-1', '1.5', 'forever']) {
      expect(() => loadConfig({ ...env, TESSERA_HEARTBEAT_RETENTION_DAYS: bad })).toThrow(/TESSERA_HEARTBEAT_RETENTION_DAYS/);
    }
  });
});
