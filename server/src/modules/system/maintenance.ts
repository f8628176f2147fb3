import type { Database } from '@tessera/db/database';

/*
 * Table statistics and vacuuming where nobody else does them. PostgreSQL's autovacuum keeps the
 * planner's statistics in step with the data and reclaims dead rows; embedded PGlite has no autovacuum,
 * and a PostgreSQL server may run with it off. Without fresh statistics the hot paths' prepared
 * statements keep plans made when their tables were nearly empty (a whole-table scan for every
 * lookup), because a cached plan is only replaced when ANALYZE changes the table's statistics.
 *
 * Rule, like autovacuum's, but read from the table files (PGlite keeps no activity statistics): a table
 * whose size grew by a fifth plus 8 pages since its last ANALYZE or VACUUM, or that got its first pages,
 * is vacuumed and analyzed. On PostgreSQL one instance at a time does it (an advisory lock).
 */

/** pg_try_advisory_lock key of the maintenance pass: one instance at a time. */
export const MAINTENANCE_LOCK_KEY = 7_351_004_211;
/** default_statistics_target of the maintenance ANALYZE (PostgreSQL's default is 100). */
const STATISTICS_TARGET = 10;

const GROWN = `
  SELECT c.oid::regclass::text AS name
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE n.nspname = current_schema() AND c.relkind = 'r'
     AND pg_relation_size(c.oid) / current_setting('block_size')::int
         > CASE WHEN c.relpages > 0 THEN c.relpages * 1.2 + 8 ELSE 0 END
   ORDER BY 1`;

/** Whether the server must keep statistics itself: PGlite always, PostgreSQL when autovacuum is off. */
export async function maintenanceNeeded(db: Database): Promise<boolean> {
  if (db.kind === 'pglite') return true;
  const [row] = await db.sql.query<{ on: boolean }>(`SELECT current_setting('autovacuum') = 'on' AS on`);
  return !row?.on;
}

/** One pass: vacuums and analyzes every grown table; returns their names. */
export async function runMaintenance(db: Database): Promise<string[]> {
  return db.session(async (sql) => {
    if (db.kind === 'postgres') {
      const [lock] = await sql.query<{ ok: boolean }>(`SELECT pg_try_advisory_lock($1) AS ok`, [MAINTENANCE_LOCK_KEY]);
      if (!lock?.ok) return []; // another instance is at it
    }
    try {
      const grown = (await sql.query<{ name: string }>(GROWN)).map((r) => r.name);
      // Names come from the catalog, quoted by regclass; VACUUM takes no parameters. Coarse statistics
      // (a tenth of the default sample) serve the keyed lookups of the hot paths and cost a tenth as much
      // to take: on PGlite a pass holds the only connection (measured: 35 ms instead of 400 ms for the
      // statistics of a 175,000-row audit log).
      for (const name of grown) {
        await sql.exec(`VACUUM ${name}`);
        await sql.exec(`BEGIN; SET LOCAL default_statistics_target = ${STATISTICS_TARGET}; ANALYZE ${name}; COMMIT`).catch(async (err) => {
          await sql.exec('ROLLBACK').catch(() => {}); // leave the connection out of the failed transaction
          throw err;
        });
      }
      return grown;
    } finally {
      if (db.kind === 'postgres') await sql.query(`SELECT pg_advisory_unlock($1)`, [MAINTENANCE_LOCK_KEY]);
    }
  });
}

export interface Maintenance {
  /** Whether passes run at all (PGlite, or PostgreSQL with autovacuum off). */
  active: boolean;
  stop(): Promise<void>;
}

/** Runs a pass now and every `everyMs` while needed (0: never). */
export async function startMaintenance(db: Database, everyMs: number, onError: (err: Error) => void): Promise<Maintenance> {
  if (everyMs <= 0 || !(await maintenanceNeeded(db))) return { active: false, stop: async () => {} };
  let running: Promise<unknown> | undefined;
  let stopped = false;
  const pass = () => {
    if (running || stopped) return;
    running = runMaintenance(db)
      .catch((err: Error) => {
        if (!stopped) onError(err);
      })
      .finally(() => (running = undefined));
  };
  pass();
  const timer = setInterval(pass, everyMs);
  timer.unref();
  return {
    active: true,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
