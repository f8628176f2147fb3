import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, testDatabaseUrl, type TestServer } from '../../../test/harness.ts';
import { MAINTENANCE_LOCK_KEY, maintenanceNeeded, runMaintenance, startMaintenance } from './maintenance.ts';

let s: TestServer;
let tenantId: string;

beforeAll(async () => {
  s = await startTestServer();
  tenantId = (await s.tenant()).id;
});
afterAll(() => s.close());

async function relpages(table: string): Promise<number> {
  const [row] = await s.db.sql.query<{ relpages: number }>(`SELECT relpages FROM pg_class WHERE oid = $1::regclass`, [`"${table}"`]);
  return row!.relpages;
}

async function addCustomers(n: number) {
  await s.db.sql.query(
    `INSERT INTO "Customer" (id, "tenantId", name) SELECT gen_random_uuid(), $1::uuid, 'c-' || g FROM generate_series(1, $2::int) g`,
    [tenantId, n],
  );
}

describe('database maintenance', () => {
  it('runs where no autovacuum does: always on PGlite, on PostgreSQL only with autovacuum off', async () => {
    const expected =
      s.dialect === 'pglite' || (await s.db.sql.query<{ off: boolean }>(`SELECT current_setting('autovacuum') = 'off' AS off`))[0]!.off;
    expect(await maintenanceNeeded(s.db)).toBe(expected);
  });

  it('vacuums and analyzes a table that grew, and leaves it alone until it grows again', async () => {
    await runMaintenance(s.db); // whatever the schema set-up left
    await addCustomers(5_000);
    expect(await relpages('Customer')).toBe(0);
    const first = await runMaintenance(s.db);
    expect(first).toContain('"Customer"');
    const pages = await relpages('Customer');
    expect(pages).toBeGreaterThan(8);
    expect(await runMaintenance(s.db)).not.toContain('"Customer"');
    await addCustomers(100); // less than a fifth more
    expect(await runMaintenance(s.db)).not.toContain('"Customer"');
    await addCustomers(5_000);
    expect(await runMaintenance(s.db)).toContain('"Customer"');
    expect(await relpages('Customer')).toBeGreaterThan(pages);
  });

  it('makes a first pass when started', async () => {
    await s.db.sql.exec(`DELETE FROM "Customer"`);
    await runMaintenance(s.db);
    await addCustomers(3_000);
    const m = await startMaintenance(s.db, 60_000, (err) => {
      throw err;
    });
    await m.stop();
    expect(m.active).toBe(await maintenanceNeeded(s.db));
    if (m.active) expect(await relpages('Customer')).toBeGreaterThan(8);
  });

  it.runIf(!!testDatabaseUrl)('lets one instance at a time do it', async () => {
    await addCustomers(20_000);
    // Another instance holds the maintenance lock: this one skips its pass.
    await s.db.session(async (sql) => {
      await sql.query(`SELECT pg_advisory_lock($1)`, [MAINTENANCE_LOCK_KEY]);
      try {
        expect(await runMaintenance(s.db)).toEqual([]);
      } finally {
        await sql.query(`SELECT pg_advisory_unlock($1)`, [MAINTENANCE_LOCK_KEY]);
      }
    });
    expect(await runMaintenance(s.db)).toContain('"Customer"');
  });
});
