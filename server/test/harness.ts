import { AsyncLocalStorage } from 'node:async_hooks';
import { randomBytes, randomUUID } from 'node:crypto';
import { openDatabase, type Database } from '@tessera/db/database';
import { type App, buildApp } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { createTenant } from '../src/modules/tenants/service.ts';

/**
 * A real server for tests: the real schema, a real database (in-memory PGlite, or a fresh database
 * on the PostgreSQL named by TEST_DATABASE_URL, dropped afterwards), requests through yoga.fetch.
 */
export interface TestServer {
  app: App;
  db: Database;
  dialect: 'pglite' | 'postgres';
  gql<T = any>(query: string, variables?: Record<string, unknown>, options?: { token?: string | null; headers?: Record<string, string> }): Promise<GqlResult<T>>;
  fetch(path: string, init?: RequestInit): Promise<Response>;
  /** A new tenant and its OWNER API token. */
  tenant(slug?: string): Promise<{ id: string; slug: string; token: string }>;
  close(): Promise<void>;
}

export interface GqlResult<T> {
  data: T;
  errors?: { message: string; extensions?: { code?: string } }[];
  response: Response;
}

export const testDatabaseUrl = process.env.TEST_DATABASE_URL || undefined;

/**
 * The environment every test app is configured from: one master key per test process, so apps that
 * share a database (two instances in one test) can open each other's signing keys, as production
 * instances sharing TESSERA_MASTER_KEY do, and nothing is written to a data dir. No timed compliance
 * sweep: its real-time alerts (a 14-day trial is "expiring soon") would land in tests that count events;
 * the compliance tests call sweepCompliance with the time they choose. No timed database maintenance
 * either (a VACUUM in the middle would show in the tests that count SQL statements), nor heartbeat
 * retention (retention.test.ts runs its passes itself).
 */
export const testEnv = { NODE_ENV: 'test', TESSERA_MASTER_KEY: randomBytes(32).toString('hex'), TESSERA_COMPLIANCE_SWEEP_SECONDS: '0', TESSERA_DB_MAINTENANCE_SECONDS: '0', TESSERA_HEARTBEAT_RETENTION_DAYS: '0' } as const;

/** Creates a throw-away database on the test PostgreSQL server; returns its URL and a dropper. */
export async function freshPostgres(base: string): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `tessera_test_${randomBytes(6).toString('hex')}`;
  const admin = await openDatabase({ url: base, poolSize: 1 });
  await admin.sql.exec(`CREATE DATABASE ${name}`);
  await admin.close();
  const url = new URL(base);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const a = await openDatabase({ url: base, poolSize: 1 });
      await a.sql.exec(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await a.close();
    },
  };
}

/** A database of its own for one test file: a fresh PostgreSQL database (TEST_DATABASE_URL), else in-memory PGlite. */
export async function openTestDatabase(poolSize = 20): Promise<{ db: Database; close(): Promise<void> }> {
  if (!testDatabaseUrl) {
    const db = await openDatabase({ dataDir: 'memory://' });
    return { db, close: () => db.close() };
  }
  const fresh = await freshPostgres(testDatabaseUrl);
  const db = await openDatabase({ url: fresh.url, poolSize });
  return {
    db,
    async close() {
      await db.close();
      await fresh.drop();
    },
  };
}

export async function startTestServer(
  options: {
    databaseUrl?: string;
    /** Extra environment for loadConfig (e.g. low rate limits for the rate-limit tests). */
    env?: Record<string, string>;
  } = {},
): Promise<TestServer> {
  let db: Database;
  let closeDb: () => Promise<void>;
  if (options.databaseUrl) {
    db = await openDatabase({ url: options.databaseUrl, poolSize: 20 });
    closeDb = () => db.close();
  } else {
    ({ db, close: closeDb } = await openTestDatabase());
  }
  const config = { ...loadConfig({ ...testEnv, ...options.env }), seedDemo: false };
  const app = await buildApp({ config, db });
  const server: TestServer = {
    app,
    db,
    dialect: db.kind,
    fetch: (path, init) => Promise.resolve(app.yoga.fetch(new Request(`http://tessera.test${path}`, init))),
    async gql(query, variables, opts = {}) {
      const headers: Record<string, string> = { 'content-type': 'application/json', ...(opts.headers ?? {}) };
      if (opts.token) headers.authorization = `Bearer ${opts.token}`;
      const response = await app.yoga.fetch('http://tessera.test/graphql', {
        method: 'POST',
        headers,
        body: JSON.stringify({ query, variables }),
      });
      const body = (await response.json()) as { data: any; errors?: GqlResult<unknown>['errors'] };
      return { data: body.data, errors: body.errors, response };
    },
    async tenant(slug = `t-${randomUUID().slice(0, 8)}`) {
      const { tenant, adminToken } = await createTenant(
        { app: app.deps, prisma: app.deps.prisma, actor: { kind: 'anonymous' }, requestId: 'test' },
        { slug },
      );
      return { id: tenant.id, slug: tenant.slug, token: adminToken };
    },
    async close() {
      await app.stop();
      await closeDb();
    },
  };
  return server;
}

/** Asserts there are no GraphQL errors and returns data, with the errors in the failure message. */
export function ok<T>(result: GqlResult<T>): T {
  if (result.errors?.length) throw new Error(`GraphQL errors: ${JSON.stringify(result.errors)}`);
  return result.data;
}

/**
 * Records the SQL statements the embedded database runs inside `during(fn)`, for tests that snapshot what
 * a request costs (no N+1). Background work, on async contexts of its own, is left out. PGlite only.
 */
export function statementRecorder(s: TestServer): { statements: string[]; during<T>(fn: () => Promise<T>): Promise<T>; restore(): void } {
  const pglite = s.db.pglite!;
  const query = pglite.query;
  const scope = new AsyncLocalStorage<true>();
  const statements: string[] = [];
  pglite.query = ((sql: string, ...rest: unknown[]) => {
    if (scope.getStore()) statements.push(sql);
    return (query as (...a: unknown[]) => unknown).call(pglite, sql, ...rest);
  }) as typeof pglite.query;
  return {
    statements,
    during(fn) {
      statements.length = 0;
      return scope.run(true, fn);
    },
    restore() {
      pglite.query = query;
    },
  };
}
