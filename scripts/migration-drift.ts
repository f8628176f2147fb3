import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { migrate, openDatabase, type Database } from '../prisma/database.ts';

const prismaDir = path.resolve(import.meta.dirname, '../prisma');

/**
 * Indexes that only the migrations create, because schema.prisma cannot express them (partial and
 * expression indexes); each is named in a comment on its model there.
 */
const HAND_WRITTEN_INDEXES = ['AuditEvent_unsealed_idx', 'Activation_device_per_product_key', 'WebhookDelivery_in_flight_idx'];
const handWritten = (line: string) => HAND_WRITTEN_INDEXES.some((name) => new RegExp(`^index CREATE (UNIQUE )?INDEX "${name}" `).test(line));

/** SQL that creates schema.prisma's database from nothing, as Prisma would. */
export function schemaSql(): string {
  return execFileSync('pnpm', ['exec', 'prisma', 'migrate', 'diff', '--from-empty', '--to-schema-datamodel', 'schema.prisma', '--script'], {
    cwd: prismaDir,
    env: { ...process.env, TESSERA_DATA_DIR: 'memory://' },
    stdio: ['ignore', 'pipe', 'ignore'],
  }).toString();
}

async function describe(db: Database): Promise<Set<string>> {
  const rows = await db.sql.query<{ line: string }>(`
    SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type || ' ' || udt_name || ' null=' || is_nullable || ' default=' || coalesce(column_default, '') AS line
      FROM information_schema.columns WHERE table_schema = 'public' AND table_name <> '_prisma_migrations'
    UNION ALL
    SELECT 'index ' || indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename <> '_prisma_migrations'
    UNION ALL
    SELECT 'constraint ' || conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid)
      FROM pg_constraint WHERE connamespace = 'public'::regnamespace AND conrelid::regclass::text <> '_prisma_migrations'
    UNION ALL
    SELECT 'enum ' || t.typname || ' ' || string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder)
      FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid GROUP BY t.typname`);
  return new Set(rows.map((r) => r.line));
}

/** Differences between a database built from prisma/migrations and one built from schema.prisma. */
export async function migrationDrift(): Promise<string[]> {
  const fromMigrations = await openDatabase({ dataDir: 'memory://' });
  const fromSchema = await openDatabase({ dataDir: 'memory://' });
  try {
    await migrate(fromMigrations);
    await fromSchema.sql.exec(schemaSql());
    const a = await describe(fromMigrations);
    const b = await describe(fromSchema);
    return [
      ...[...b].filter((l) => !a.has(l)).map((l) => `missing from migrations: ${l}`),
      ...[...a].filter((l) => !b.has(l) && !handWritten(l)).map((l) => `only in migrations:     ${l}`),
    ];
  } finally {
    await fromMigrations.close();
    await fromSchema.close();
  }
}
