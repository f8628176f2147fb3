import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type Database, migrate, openDatabase } from '@tessera/db/database';
import { afterAll, describe, expect, it } from 'vitest';
import { freshPostgres, openTestDatabase, testDatabaseUrl } from './harness.ts';

/*
 * Migrations as the server applies them on start (prisma/database.ts): each with its record in
 * `_prisma_migrations`, once, however many instances start at the same moment.
 */

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A migrations folder holding `migrations` (name -> SQL), as prisma/migrations holds the real ones. */
function migrationsDir(migrations: Record<string, string>): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'tessera-migrations-'));
  dirs.push(dir);
  for (const [name, sql] of Object.entries(migrations)) {
    mkdirSync(path.join(dir, name));
    writeFileSync(path.join(dir, name, 'migration.sql'), sql);
  }
  return dir;
}

async function tableExists(db: Database, name: string): Promise<boolean> {
  const [row] = await db.sql.query<{ found: string | null }>(`SELECT to_regclass($1)::text AS found`, [name]);
  return row!.found !== null;
}

describe('migrate', () => {
  it('applies a migration and its record together: when the record cannot be written, the migration is undone, and the next start applies it', async () => {
    const { db, close } = await openTestDatabase(4);
    try {
      await migrate(db);
      const dir = migrationsDir({ '20990101000000_probe': 'CREATE TABLE "Probe" (id int PRIMARY KEY);' });
      // The process "stops" between the migration and its record: here the record's INSERT fails.
      await db.sql.exec(`
        CREATE FUNCTION refuse_record() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'stopped before the record'; END $$;
        CREATE TRIGGER refuse_record BEFORE INSERT ON "_prisma_migrations" FOR EACH ROW EXECUTE FUNCTION refuse_record();`);
      await expect(migrate(db, dir)).rejects.toThrow(/20990101000000_probe/);
      expect(await tableExists(db, '"Probe"')).toBe(false);

      await db.sql.exec(`DROP TRIGGER refuse_record ON "_prisma_migrations"`);
      expect(await migrate(db, dir)).toEqual(['20990101000000_probe']);
      expect(await tableExists(db, '"Probe"')).toBe(true);
      expect(await migrate(db, dir)).toEqual([]);
    } finally {
      await close();
    }
  });

  it.runIf(testDatabaseUrl)('on an empty PostgreSQL database, instances starting at once apply each migration once, and all of them start', async () => {
    const fresh = await freshPostgres(testDatabaseUrl!);
    const instances = await Promise.all([1, 2, 3].map(() => openDatabase({ url: fresh.url, poolSize: 2 })));
    try {
      const applied = await Promise.all(instances.map((db) => migrate(db)));
      const all = applied.flat();
      expect(all.length).toBeGreaterThan(0);
      expect(new Set(all).size).toBe(all.length);
      expect(applied.filter((a) => a.length > 0)).toHaveLength(1);
      const rows = await instances[0]!.sql.query<{ migration_name: string; n: string }>(
        `SELECT migration_name, count(*)::text AS n FROM "_prisma_migrations" WHERE finished_at IS NOT NULL GROUP BY migration_name`,
      );
      expect(rows.map((r) => r.migration_name).sort()).toEqual([...all].sort());
      expect(rows.every((r) => r.n === '1')).toBe(true);
    } finally {
      await Promise.all(instances.map((db) => db.close()));
      await fresh.drop();
    }
  });
});
