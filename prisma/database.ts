import { createHash, randomUUID } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { PrismaPGlite } from 'pglite-prisma-adapter';
import { preparedStatements } from './pglite-prepared.ts';
import { PrismaClient } from './generated/client.ts';

export type { PrismaClient };

/** A raw SQL channel beside Prisma, for migrations and the few statements Prisma cannot express. */
export interface SqlRunner {
  /**
   * `name` makes it a named prepared statement: each PostgreSQL connection (or the PGlite session)
   * parses it once, then only binds parameters (for the hot paths' long statements). One name, one text.
   */
  query<T = Record<string, unknown>>(sql: string, params?: unknown[], name?: string): Promise<T[]>;
  /** Runs a multi-statement script. */
  exec(sql: string): Promise<void>;
}

export interface Database {
  kind: 'pglite' | 'postgres';
  prisma: PrismaClient;
  sql: SqlRunner;
  /** The embedded instance, when kind is 'pglite'. */
  pglite?: PGlite;
  /** Runs `fn` on one dedicated connection (session-level locks, multi-statement transactions). */
  session<T>(fn: (sql: SqlRunner) => Promise<T>): Promise<T>;
  /** Runs `fn` in one transaction on the raw driver: committed when it resolves, rolled back when it throws. */
  transaction<T>(fn: (sql: SqlRunner) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export type DatabaseOptions =
  | {
      url: string;
      poolSize?: number;
      /**
       * How long a query may wait to open a connection or for a free one in the pool (default 5 s); past
       * it the query fails as the database being unreachable (a retryable SERVICE_UNAVAILABLE for requests).
       */
      connectTimeoutMs?: number;
      /**
       * How long a statement may go unanswered before its connection is taken for dead and closed (default
       * 30 s; 0 never): its query, and any queued behind it, fail as the database being unreachable. Work
       * that may take long on purpose (migrations, VACUUM) runs in `session`, which is not watched.
       */
      queryTimeoutMs?: number;
    }
  /** PGlite served on a Unix socket by a running Tessera server (one connection at a time). */
  | { socketDir: string }
  | { dataDir: string }
  | { pglite: PGlite };

const migrationsDir = path.join(import.meta.dirname, 'migrations');
/** Defaults of DatabaseOptions' connectTimeoutMs and queryTimeoutMs. */
const CONNECT_TIMEOUT_MS = 5_000;
const QUERY_TIMEOUT_MS = 30_000;
/** SQLSTATE deadlock_detected, and how often an autocommit statement aborted by it is run. */
const DEADLOCK = '40P01';
const DEADLOCK_TRIES = 3;

/**
 * The wait before a statement or transaction aborted by a deadlock runs again: a few milliseconds,
 * random, longer at each attempt. The other party was waiting for the locks the aborted one held and
 * is woken when they go; run again at once, the retry can take a row back before that party is
 * scheduled (a free row is taken without queueing), and the two deadlock again, try after try.
 */
export function pauseAfterDeadlock(attempt: number): Promise<void> {
  const ms = attempt * (5 + Math.random() * 15);
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * A pg client that closes its connection when a statement goes unanswered for `answerTimeoutMs`. A
 * connection to a server that went silent (a failover that leaves the old address blackholed, a stuck
 * proxy) otherwise holds its statement until the operating system gives the connection up, many minutes
 * later: TCP keepalive does not probe a connection with data unacknowledged. pg's own query_timeout
 * fails the caller but leaves the statement on the connection, which the next user of the client (a
 * transaction's ROLLBACK, the next request) then queues behind. Destroying the socket fails every
 * statement on it with the connection error, and the pool replaces the client.
 */
class WatchedClient extends pg.Client {
  /** Off while `session` runs work that may take long on purpose. */
  unwatched = false;
  private readonly answerTimeoutMs: number;

  constructor(config?: pg.ClientConfig & { answerTimeoutMs?: number }) {
    super(config);
    this.answerTimeoutMs = config?.answerTimeoutMs ?? 0;
  }

  /** The statement's result, with a timer that ends the connection if it comes too late. */
  watched(run: (done: () => void) => unknown): unknown {
    if (this.unwatched || this.answerTimeoutMs <= 0) return run(() => {});
    const timer = setTimeout(() => {
      const stream = (this as unknown as { connection?: { stream?: { destroy(err: Error): void } } }).connection?.stream;
      stream?.destroy(new Error(`Connection terminated: PostgreSQL did not answer a statement within ${this.answerTimeoutMs} ms`));
    }, this.answerTimeoutMs);
    timer.unref();
    return run(() => clearTimeout(timer));
  }
}
// Defined outside the class: pg.Client's overloads of query cannot be overridden with one signature.
Object.defineProperty(WatchedClient.prototype, 'query', {
  value: function query(this: WatchedClient, ...args: unknown[]): unknown {
    const base = pg.Client.prototype.query as (...a: unknown[]) => unknown;
    const first = args[0] as { submit?: unknown } | string;
    // A Submittable (a cursor, a stream) is read at its consumer's pace; it is not timed.
    if (typeof first === 'object' && first !== null && typeof first.submit === 'function') return base.apply(this, args);
    return this.watched((done) => {
      const last = args.length - 1;
      const callback = args[last];
      if (typeof callback === 'function') {
        args[last] = (...r: unknown[]) => {
          done();
          return (callback as (...r: unknown[]) => unknown)(...r);
        };
        return base.apply(this, args);
      }
      const result = base.apply(this, args) as Promise<unknown>;
      result.then(done, done);
      return result;
    });
  },
});

/**
 * A client checked out of `pool`, listened to while it is out. pg-pool listens for an 'error' on idle
 * clients only; a connection that ends while checked out (a dropped network, a restarted database)
 * emits one on its Client, and an 'error' event nobody listens to ends the process. Queries in flight
 * fail with the error anyway, so the listener only notes it: `release` then hands the broken client back
 * to be discarded. `failed`, the error the caller's work failed with, discards it too (a session whose
 * work failed may leave a transaction or a lock open on its connection).
 */
async function checkOut(pool: pg.Pool): Promise<{ client: pg.PoolClient; release(failed?: unknown): void }> {
  const client = await pool.connect();
  let broken: Error | undefined;
  const onError = (err: Error) => {
    broken ??= err;
  };
  client.on('error', onError);
  return {
    client,
    release(failed) {
      client.removeListener('error', onError);
      client.release(broken ?? (failed === undefined ? undefined : failed instanceof Error ? failed : new Error(String(failed))));
    },
  };
}

export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  if ('url' in options || 'socketDir' in options) {
    // Two pools on PostgreSQL, half the connections each. `pool` serves the raw channel: the hot paths'
    // named statements (parsed once per connection), whose parameters are arrays of one element per
    // batched call, so a plan made for one execution's arrays would cost more than running it; they use
    // their generic plan, rebuilt whenever ANALYZE refreshes a table's statistics (autovacuum, or the
    // server's own maintenance where autovacuum is off: server/src/modules/system/maintenance.ts).
    // Prisma's one-off statements keep PostgreSQL's default planning on `ormPool`.
    let pool: pg.Pool;
    let ormPool: pg.Pool;
    if ('url' in options) {
      const size = options.poolSize ?? 10;
      const raw = Math.max(1, Math.ceil(size / 2));
      // Without a connection timeout, a server that accepts TCP but never answers (a blackholed address, a
      // stuck proxy) holds every query forever; without an answer timeout (WatchedClient), so does a
      // connection whose server goes silent. Keepalive lets the OS find idle connections to a vanished host.
      const common = {
        connectionString: options.url,
        connectionTimeoutMillis: options.connectTimeoutMs ?? CONNECT_TIMEOUT_MS,
        keepAlive: true,
        Client: WatchedClient,
        answerTimeoutMs: options.queryTimeoutMs ?? QUERY_TIMEOUT_MS,
      } as pg.PoolConfig;
      pool = new pg.Pool({ ...common, max: raw, options: '-c plan_cache_mode=force_generic_plan' });
      ormPool = new pg.Pool({ ...common, max: Math.max(1, size - raw) });
    } else {
      pool = ormPool = new pg.Pool({ host: options.socketDir, user: 'postgres', database: 'postgres', max: 1 });
    }
    // An idle client's connection ending (a restart, a dropped database) is reported here; without a
    // listener it would crash the process. The pool replaces the client; queries in flight get the error.
    // Nothing to do here: the next query opens a new connection (and /health reports an outage).
    for (const p of new Set([pool, ormPool])) p.on('error', () => {});
    const sql: SqlRunner = {
      async query(text, params, name) {
        const config = name ? { name, text, values: params as unknown[] } : { text, values: params as unknown[] };
        // Each call here is a statement of its own (autocommit): one PostgreSQL aborted to break a
        // deadlock changed nothing and runs again, as the other party to the deadlock has gone on.
        for (let attempt = 1; ; attempt++) {
          try {
            return (await pool.query(config)).rows;
          } catch (err) {
            if ((err as { code?: string }).code !== DEADLOCK || attempt >= DEADLOCK_TRIES) throw err;
            await pauseAfterDeadlock(attempt);
          }
        }
      },
      async exec(text) {
        await pool.query(text);
      },
    };
    const prisma = new PrismaClient({ adapter: new PrismaPg(ormPool) });
    return {
      kind: 'postgres',
      prisma,
      sql,
      async session(fn) {
        const { client, release } = await checkOut(pool);
        // Migrations and VACUUM run here, and may run long: not taken for a silent server.
        if (client instanceof WatchedClient) client.unwatched = true;
        let failed: unknown;
        try {
          return await fn({
            async query(text, params) {
              return (await client.query(text, params as unknown[])).rows;
            },
            async exec(text) {
              await client.query(text);
            },
          });
        } catch (err) {
          failed = err;
          throw err;
        } finally {
          if (client instanceof WatchedClient) client.unwatched = false;
          release(failed);
        }
      },
      async transaction(fn) {
        const { client, release } = await checkOut(pool);
        let broken: unknown;
        try {
          await client.query('BEGIN');
          const result = await fn({
            async query(text, params, name) {
              return (await client.query(name ? { name, text, values: params as unknown[] } : { text, values: params as unknown[] })).rows;
            },
            async exec(text) {
              await client.query(text);
            },
          });
          await client.query('COMMIT');
          return result;
        } catch (err) {
          await client.query('ROLLBACK').catch((e: unknown) => (broken = e));
          throw err;
        } finally {
          // A connection that could not even roll back is dropped, not handed to the next caller.
          release(broken);
        }
      },
      async close() {
        await prisma.$disconnect();
        await Promise.all([...new Set([pool, ormPool])].map((p) => p.end()));
      },
    };
  }
  let pglite: PGlite;
  let owned = true;
  if ('pglite' in options) {
    pglite = options.pglite;
    owned = false;
  } else {
    if (options.dataDir !== 'memory://') mkdirSync(options.dataDir, { recursive: true });
    // Callers that open a data dir directly must hold its lock (see embedded.ts).
    pglite = await PGlite.create(options.dataDir);
  }
  const prepared = preparedStatements(pglite);
  const sql: SqlRunner = {
    async query(text, params, name) {
      if (name) return prepared.query(name, text, params ?? [], false);
      return (await pglite.query(text, params as unknown[])).rows as never[];
    },
    async exec(text) {
      await pglite.exec(text);
    },
  };
  // The adapter is typed against an older driver-adapter-utils; the runtime contract is the same.
  const prisma = new PrismaClient({ adapter: new PrismaPGlite(pglite) as never });
  return {
    kind: 'pglite',
    prisma,
    sql,
    pglite,
    session: (fn) => fn(sql),
    transaction: (fn) =>
      pglite.transaction((tx) =>
        fn({
          async query(text, params, name) {
            if (name) return prepared.query(name, text, params ?? [], true);
            return (await tx.query(text, params as unknown[])).rows as never[];
          },
          async exec(text) {
            await tx.exec(text);
          },
        }),
      ),
    async close() {
      await prisma.$disconnect();
      if (owned) await pglite.close();
    },
  };
}

interface MigrationFile {
  name: string;
  sql: string;
  checksum: string;
}

function readMigrations(dir: string): MigrationFile[] {
  return readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort()
    .map((name) => {
      const sql = readFileSync(path.join(dir, name, 'migration.sql'), 'utf8');
      return { name, sql, checksum: createHash('sha256').update(sql).digest('hex') };
    });
}

// Any constant works: every instance must agree on it.
const MIGRATION_LOCK_ID = 72_170_519;

const quote = (text: string) => `'${text.replaceAll("'", "''")}'`;

/**
 * Applies pending migrations from prisma/migrations (`dir`, for tests), recording them in
 * `_prisma_migrations` exactly as `prisma migrate deploy` does (so `prisma migrate status` agrees). On
 * PostgreSQL an advisory lock makes concurrent start-ups of several instances apply each migration once.
 * A migration and its record commit in one transaction: a process stopped between the two would leave a
 * migration applied but unrecorded, which every later start would run again and fail on.
 */
export async function migrate(db: Database, dir = migrationsDir): Promise<string[]> {
  const files = readMigrations(dir);
  const run = async (sql: SqlRunner) => {
    await sql.exec(`CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
      "id" VARCHAR(36) PRIMARY KEY NOT NULL,
      "checksum" VARCHAR(64) NOT NULL,
      "finished_at" TIMESTAMPTZ,
      "migration_name" VARCHAR(255) NOT NULL,
      "logs" TEXT,
      "rolled_back_at" TIMESTAMPTZ,
      "started_at" TIMESTAMPTZ NOT NULL DEFAULT now(),
      "applied_steps_count" INTEGER NOT NULL DEFAULT 0)`);
    const done = new Map(
      (
        await sql.query<{ migration_name: string; checksum: string }>(
          `SELECT migration_name, checksum FROM "_prisma_migrations" WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL`,
        )
      ).map((r) => [r.migration_name, r.checksum]),
    );
    const applied: string[] = [];
    for (const m of files) {
      const known = done.get(m.name);
      if (known !== undefined) {
        if (known !== m.checksum) throw new Error(`migration ${m.name} was edited after it was applied`);
        continue;
      }
      const record = `INSERT INTO "_prisma_migrations" (id, checksum, finished_at, migration_name, applied_steps_count)
        VALUES (${quote(randomUUID())}, ${quote(m.checksum)}, now(), ${quote(m.name)}, 1)`;
      await sql.exec(`BEGIN;\n${m.sql}\n;${record};\nCOMMIT;`).catch(async (err) => {
        await sql.exec('ROLLBACK').catch(() => {});
        throw new Error(`migration ${m.name} failed: ${(err as Error).message}`);
      });
      applied.push(m.name);
    }
    return applied;
  };

  if (db.kind === 'pglite') return run(db.sql);
  return db.session(async (sql) => {
    await sql.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_ID]);
    try {
      return await run(sql);
    } finally {
      await sql.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_ID]);
    }
  });
}
