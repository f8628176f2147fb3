/**
 * Operator CLI: `pnpm tessera <command>`. Honours DATABASE_URL and TESSERA_DATA_DIR like the server;
 * with the embedded database it goes through the running server's socket when one holds the data dir.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { migrate, openDatabase } from '@tessera/db/database';
import { openForOperator } from '@tessera/db/embedded';
import { loadConfig } from './config.ts';
import type { AppDeps } from './context.ts';
import { ConflictError, ImportError, NotFoundError, ValidationError } from './errors.ts';
import { createBus } from './modules/audit/bus.ts';
import { leaveSealingToServers, sealerOf } from './modules/audit/chain.ts';
import type { ServiceContext } from './modules/audit/service.ts';
import { importLicenses } from './modules/licenses/import.ts';
import { changeMemberRole, createMember, createTenant, resetMemberPassword } from './modules/tenants/service.ts';

const USAGE = `Usage: pnpm tessera <command> [options]

Commands:
  tenant create <slug> [--name <name>] [--json]
      Create a tenant and print its first OWNER API token (shown once).
  member create --tenant <slug> --email <email> [--role OWNER|ADMIN|SUPPORT|READ_ONLY] [--password-stdin] [--json]
      Add a console user. The password is read from standard input with --password-stdin
      (one line), else generated and printed.
  member reset-password --tenant <slug> --email <email> [--password-stdin] [--json]
      Set a member's password (read from standard input, else generated and printed) and end
      their sessions: for a member locked out, the sole owner included.
  member set-role --tenant <slug> --email <email> --role OWNER|ADMIN|SUPPORT|READ_ONLY [--json]
      Give a member another role and end their sessions (the last owner keeps OWNER).
  licenses import <file> --tenant <slug> [--format csv|jsonl] [--json]
      Import licenses from CSV (header row) or JSON lines, all or nothing.
  migrate
      Apply pending database migrations (the server also does this on start).

--password <pw> is still accepted by member create and member reset-password, but is discouraged:
a command line can be read by other users of the machine (ps) and lands in shell history.

Environment: DATABASE_URL (PostgreSQL) or TESSERA_DATA_DIR (embedded, default ./data).`;

class UsageError extends Error {}

/** How long the CLI waits for Redis before it leaves its events to the servers' sweep instead. */
const BUS_READY_MS = 5_000;

/**
 * Runs `fn` against the configured database. The audit events a command writes reach the running
 * servers as their own do, so they react at once (a member's sessions ended: their open sockets close):
 * - on PostgreSQL with REDIS_URL, the CLI chains (seals) them and publishes them through Redis to every
 *   instance, and exits only once Redis has taken them;
 * - on PostgreSQL without Redis the servers' buses are in memory, which no other process reaches: the
 *   rows are left unsealed, and a running server's sweep (every 5 s) seals and publishes them (the next
 *   server to start, if none runs);
 * - through a running server's embedded database, likewise the server seals and publishes them (the
 *   CLI's own seal statements would also clash with the server's in PGlite's one session);
 * - on the embedded database with no server holding it, nobody is there to tell: the CLI seals them.
 */
async function withDatabase<T>(fn: (app: AppDeps) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const handle = config.databaseUrl
    ? await openDatabase({ url: config.databaseUrl, poolSize: 2, connectTimeoutMs: config.dbConnectTimeoutMs, queryTimeoutMs: config.dbQueryTimeoutMs }).then((db) => ({ db, viaServer: false, release: () => db.close() }))
    : await openForOperator(config.dataDir);
  // The servers' bus: channels without a prefix of their own, as main.ts starts them.
  const bus = createBus(config.databaseUrl ? config.redisUrl : undefined);
  try {
    if (!handle.viaServer) await migrate(handle.db);
    const app: AppDeps = { config, db: handle.db, prisma: handle.db.prisma, bus };
    if (handle.viaServer) leaveSealingToServers(app);
    else if (config.databaseUrl && !(bus.state().transport === 'redis' && (await bus.ready(BUS_READY_MS)))) {
      if (config.redisUrl) console.error(`Redis (REDIS_URL) did not answer within ${BUS_READY_MS / 1000} s: the running servers learn of this change from the audit log, within seconds.`);
      leaveSealingToServers(app);
    }
    try {
      return await fn(app);
    } finally {
      // Seals in flight publish their events; close() below waits until Redis has them.
      await sealerOf(app).stop();
    }
  } finally {
    await bus.close();
    await handle.release();
  }
}

function operatorContext(app: AppDeps, tenantId?: string): ServiceContext {
  return {
    app,
    prisma: app.prisma,
    actor: tenantId ? { kind: 'operator', tenantId } : { kind: 'anonymous' },
    requestId: `cli-${randomUUID()}`,
  };
}

async function tenantId(app: AppDeps, slug: string | undefined): Promise<string> {
  if (!slug) throw new UsageError('--tenant <slug> is required');
  const tenant = await app.prisma.tenant.findUnique({ where: { slug }, select: { id: true } });
  if (!tenant) throw new NotFoundError(`tenant "${slug}"`);
  return tenant.id;
}

/** The id of the member with this email in the tenant. */
async function memberId(app: AppDeps, tenant: string, address: string | undefined): Promise<string> {
  if (!address) throw new UsageError('--email <email> is required');
  const user = await app.prisma.user.findFirst({ where: { tenantId: tenant, email: address.trim().toLowerCase() }, select: { id: true } });
  if (!user) throw new NotFoundError(`member ${address}`);
  return user.id;
}

/** The password given (--password-stdin: standard input, one line; --password: discouraged), or null for none. */
async function passwordOption(argv: string | undefined, fromStdin: boolean): Promise<string | null> {
  if (argv !== undefined && fromStdin) throw new UsageError('give --password or --password-stdin, not both');
  if (!fromStdin) return argv ?? null;
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
  if (!text) throw new UsageError('--password-stdin read no password from standard input');
  return text;
}

function print(json: boolean, value: Record<string, unknown>, human: string) {
  console.log(json ? JSON.stringify(value) : human);
}

/** The command line, or a UsageError (exit code 2, with the usage) for an unknown option or a missing value. */
function parseCommandLine(argv: string[]) {
  try {
    return parseCommandLineOrThrow(argv);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

function parseCommandLineOrThrow(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      json: { type: 'boolean', default: false },
      name: { type: 'string' },
      tenant: { type: 'string' },
      email: { type: 'string' },
      role: { type: 'string' },
      password: { type: 'string' },
      'password-stdin': { type: 'boolean', default: false },
      format: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(argv);
  const [group, action, arg] = positionals;
  const json = values.json ?? false;
  if (values.help || !group) {
    console.log(USAGE);
    return values.help ? 0 : 2;
  }

  if (group === 'tenant' && action === 'create') {
    if (!arg) throw new UsageError('tenant create needs a <slug>');
    const out = await withDatabase(async (app) => {
      const { tenant, adminToken } = await createTenant(operatorContext(app), { slug: arg, name: values.name });
      return { tenantId: tenant.id, slug: tenant.slug, adminToken };
    });
    print(json, out, `Created tenant "${out.slug}" (${out.tenantId}).\nOWNER API token (shown once): ${out.adminToken}`);
    return 0;
  }

  if (group === 'member' && (action === 'create' || action === 'reset-password')) {
    const given = await passwordOption(values.password, values['password-stdin'] ?? false);
    const password = given ?? randomBytes(12).toString('base64url');
    const shown = given === null ? { password } : {};
    if (action === 'create') {
      const out = await withDatabase(async (app) => {
        const ctx = operatorContext(app, await tenantId(app, values.tenant));
        const user = await createMember(ctx, { email: values.email ?? '', password, role: (values.role ?? 'ADMIN').toUpperCase() as never });
        return { memberId: user.id, email: user.email, role: user.role };
      });
      print(json, { ...out, ...shown }, `Added ${out.email} as ${out.role}.${given === null ? ` Password: ${password}` : ''}`);
      return 0;
    }
    const out = await withDatabase(async (app) => {
      const tenant = await tenantId(app, values.tenant);
      const user = await resetMemberPassword(operatorContext(app, tenant), await memberId(app, tenant, values.email), { password });
      return { memberId: user.id, email: user.email };
    });
    print(json, { ...out, ...shown }, `New password set for ${out.email}; their sessions ended.${given === null ? ` Password: ${password}` : ''}`);
    return 0;
  }

  if (group === 'member' && action === 'set-role') {
    if (!values.role) throw new UsageError('member set-role needs --role OWNER|ADMIN|SUPPORT|READ_ONLY');
    const out = await withDatabase(async (app) => {
      const tenant = await tenantId(app, values.tenant);
      const user = await changeMemberRole(operatorContext(app, tenant), await memberId(app, tenant, values.email), { role: values.role!.toUpperCase() as never });
      return { memberId: user.id, email: user.email, role: user.role };
    });
    print(json, out, `${out.email} is ${out.role}.`);
    return 0;
  }

  if (group === 'licenses' && action === 'import') {
    if (!arg) throw new UsageError('licenses import needs a <file>');
    const format = (values.format ?? (path.extname(arg).toLowerCase() === '.csv' ? 'csv' : 'jsonl')).toUpperCase();
    if (format !== 'CSV' && format !== 'JSONL') throw new UsageError('--format must be csv or jsonl');
    const data = readFileSync(arg, 'utf8');
    const ids = await withDatabase(async (app) => importLicenses(operatorContext(app, await tenantId(app, values.tenant)), format, data));
    print(json, { imported: ids.length, licenseIds: ids }, `Imported ${ids.length} license(s).`);
    return 0;
  }

  if (group === 'migrate') {
    // withDatabase applies pending migrations (under the advisory lock on PostgreSQL) before anything else.
    const latest = await withDatabase(async (app) => {
      const rows = await app.db.sql.query<{ migration_name: string }>(
        `SELECT migration_name FROM "_prisma_migrations" WHERE finished_at IS NOT NULL ORDER BY migration_name DESC LIMIT 1`,
      );
      return rows[0]?.migration_name ?? null;
    });
    print(json, { ok: true, latest }, `The database is migrated (latest: ${latest}).`);
    return 0;
  }

  throw new UsageError(`unknown command: ${positionals.join(' ')}`);
}

run(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof UsageError) console.error(`${err.message}\n\n${USAGE}`);
    else if (err instanceof ImportError) console.error([err.message, ...err.rows.map((r) => `  line ${r.line}: ${r.message}`)].join('\n'));
    else if (err instanceof ValidationError || err instanceof ConflictError || err instanceof NotFoundError) console.error(err.message);
    else console.error(err instanceof Error ? err.message : err);
    process.exit(err instanceof UsageError ? 2 : 1);
  },
);
