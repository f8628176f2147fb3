/**
 * `pnpm bench`: throughput and latency of the hot client operations, each as a ratio to a no-op
 * mutation measured on the same server in the same run. The server runs in its own process (as in
 * production, NODE_ENV=production); load comes from autocannon in this process. Runs on embedded
 * PGlite and, when reachable, on PostgreSQL; on each, subscription fan-out too (bench/fanout.ts in its
 * own process), and once the SDK's offline verification (sdk/bench/verify.ts). Prints one table and
 * writes bench/results/<stamp>.json.
 *
 *   pnpm bench [--duration 10] [--connections 16] [--warmup 3] [--only pglite|postgres] [--scenarios a,b] [--cpu-prof dir]
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import pg from 'pg';
import { type DatabaseOptions, openDatabase } from '@tessera/db/database';
import { operationHash } from '../../sdk/src/client.ts';
import { loadConfig } from '../src/config.ts';
import { createBus } from '../src/modules/audit/bus.ts';
import { sealerOf } from '../src/modules/audit/chain.ts';
import { sweepLeases } from '../src/modules/leases/service.ts';
import type { OperationName } from '../../sdk/src/operations.ts';

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '16' },
    /** Unmeasured seconds before each scenario. */
    warmup: { type: 'string', default: '3' },
    only: { type: 'string' },
    /** Run only the scenarios whose name contains one of these (comma-separated); the no-op always runs. */
    scenarios: { type: 'string' },
    /** Write a V8 CPU profile of the server process to this directory (open it in Chrome DevTools). */
    'cpu-prof': { type: 'string' },
  },
});
const wanted = (name: string) => !values.scenarios || values.scenarios.split(',').some((s) => name.includes(s.trim()));
const DURATION = Number(values.duration);
const CONNECTIONS = Number(values.connections);
const WARMUP = Number(values.warmup);
const root = path.resolve(import.meta.dirname, '../..');
const pgBase = process.env.TEST_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres';

interface Server {
  url: string;
  proc: ChildProcess;
  stop(): Promise<void>;
}

async function startServer(env: Record<string, string>): Promise<Server> {
  const profile = values['cpu-prof'] ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(values['cpu-prof'])}`] : [];
  const proc = spawn(process.execPath, [...profile, '--import', 'tsx', path.join(root, 'server/src/main.ts')], {
    env: {
      ...process.env,
      NODE_ENV: 'production',
      HOST: '127.0.0.1',
      PORT: '0',
      TESSERA_DEMO: '0',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    proc.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const m = /serving at (http:\/\/\S+)/.exec(out);
      if (m) resolve(m[1]!.replace('localhost', '127.0.0.1'));
    });
    proc.once('exit', (code) => reject(new Error(`server exited with ${code} before serving:\n${out}`)));
  });
  return {
    url,
    proc,
    stop: () =>
      new Promise<void>((resolve) => {
        proc.once('exit', () => resolve());
        proc.kill('SIGTERM');
      }),
  };
}

function gql<T = any>(url: string, query: string, variables: Record<string, unknown>, token?: string): Promise<T> {
  return post<T>(url, { query, variables }, token);
}

async function post<T = any>(url: string, payload: unknown, token?: string): Promise<T> {
  const res = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(payload),
  });
  const body = (await res.json()) as { data: T; errors?: unknown };
  if (body.errors) throw new Error(`GraphQL errors: ${JSON.stringify(body.errors)}`);
  return body.data;
}

function tessera(args: string[], env: Record<string, string>): Promise<string> {
  return new Promise((resolve, reject) => {
    const proc = spawn(path.join(root, 'node_modules/.bin/tsx'), [path.join(root, 'server/src/cli.ts'), ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    proc.stdout.on('data', (c: Buffer) => (out += c.toString()));
    proc.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`tessera ${args.join(' ')} exited ${code}`))));
  });
}

/** Client operations go exactly as the SDK sends them: persisted-operation hashes, no document text. */
function persisted(name: OperationName, variables: Record<string, unknown> = {}) {
  return { operationName: name, variables, extensions: { persistedQuery: { version: 1, sha256Hash: operationHash(name) } } };
}

interface Fixture {
  key: string;
  licenseId: string;
  devices: string[];
}

async function setUp(url: string, env: Record<string, string>): Promise<{ token: string; fixture: Fixture }> {
  const { adminToken: token } = JSON.parse(await tessera(['tenant', 'create', `bench-${randomBytes(3).toString('hex')}`, '--json'], env));
  const product = await gql(url, `mutation { createProduct(input: { name: "Bench", code: "bench" }) { ... on Product { id } } }`, {}, token);
  const productId = product.createProduct.id as string;
  const edition = await gql(
    url,
    `mutation($input: CreateEditionInput!) { createEdition(input: $input) { __typename ... on Edition { id } ... on Error { message } } }`,
    { input: { productId, name: 'Site', code: 'site', licenseType: 'PERPETUAL', maxActivations: 2_000_000, heartbeatSeconds: 3600 } },
    token,
  );
  const created = await gql(
    url,
    `mutation($input: CreateLicenseInput!) { createLicense(input: $input) { ... on CreateLicensePayload { license { id key } } } }`,
    { input: { editionId: edition.createEdition.id } },
    token,
  );
  const { id: licenseId, key } = created.createLicense.license as { id: string; key: string };
  const devices = Array.from({ length: 256 }, (_, i) => `bench-device-${i}`);
  for (let i = 0; i < devices.length; i += 32) {
    await Promise.all(devices.slice(i, i + 32).map((fingerprint) => post(url, persisted('Activate', { input: { key, fingerprint } }))));
  }
  return { token, fixture: { key, licenseId, devices } };
}

/** A floating license with ample seats and a metered license with an ample quota, for the seat and usage scenarios. */
async function setUpSeatsAndUsage(url: string, token: string): Promise<{ floatingKey: string; floatingLicenseId: string; meteredKey: string }> {
  const product = await gql(url, `mutation { createProduct(input: { name: "Bench seats", code: "bench-seats" }) { ... on Product { id } } }`, {}, token);
  const productId = product.createProduct.id as string;
  await gql(url, `mutation($input: CreateMeterInput!) { createMeter(input: $input) { __typename } }`, { input: { productId, code: 'calls', name: 'Calls' } }, token);
  const edition = async (input: Record<string, unknown>) =>
    (
      await gql(
        url,
        `mutation($input: CreateEditionInput!) { createEdition(input: $input) { __typename ... on Edition { id } ... on Error { message } } }`,
        { input: { productId, name: input.code, ...input } },
        token,
      )
    ).createEdition.id as string;
  const license = async (editionId: string) =>
    (
      await gql(
        url,
        `mutation($input: CreateLicenseInput!) { createLicense(input: $input) { ... on CreateLicensePayload { license { id key } } } }`,
        { input: { editionId } },
        token,
      )
    ).createLicense.license as { id: string; key: string };
  const floating = await license(
    await edition({ code: 'floating', licenseType: 'FLOATING', provisioning: 'FLOATING', seats: 2_000_000_000, leaseSeconds: 3600 }),
  );
  const metered = await license(await edition({ code: 'metered', licenseType: 'PERPETUAL', meters: [{ meter: 'calls', quota: 2_000_000_000, period: 'NONE' }] }));
  return {
    floatingKey: floating.key,
    floatingLicenseId: Buffer.from(floating.id, 'base64').toString().split(':')[1]!,
    meteredKey: metered.key,
  };
}

/**
 * The lease sweep over `count` lapsed leases of one license, measured in this process on the
 * server's database after the server stopped (so its own periodic sweep cannot take them first),
 * configured as the server was (`env`: its master key or data dir, for the signer the sweep opens).
 */
async function measureLeaseSweep(options: DatabaseOptions, env: Record<string, string>, licenseId: string, count: number): Promise<Row> {
  const db = await openDatabase(options);
  try {
    const [license] = await db.sql.query<{ tenantId: string }>(`SELECT "tenantId"::text AS "tenantId" FROM "License" WHERE id = $1`, [licenseId]);
    const tenantId = license!.tenantId;
    await db.sql.query(
      `INSERT INTO "Lease" (id, "tenantId", "licenseId", holder, fingerprint, status, "grantedAt", "renewedAt", "expiresAt", "activeHolder")
       SELECT gen_random_uuid(), $1::uuid, $2::uuid, 'sweep-' || g, 'sweep-' || g, 'ACTIVE', now(), now(), now() - interval '1 minute', 'sweep-' || g
       FROM generate_series(1, $3::int) AS g`,
      [tenantId, licenseId, count],
    );
    const deps = { config: loadConfig({ NODE_ENV: 'production', ...env }), db, prisma: db.prisma, bus: createBus(undefined) };
    const started = performance.now();
    const swept = await sweepLeases(deps);
    const ms = performance.now() - started;
    await sealerOf(deps).stop();
    await deps.bus.close();
    return { scenario: `lease sweep: ${swept} expired leases in one run`, rps: swept / (ms / 1000), p50: Math.round(ms), p99: Math.round(ms), errors: count - swept };
  } finally {
    await db.close();
  }
}

/**
 * Table statistics as autovacuum keeps them on a production PostgreSQL (and the server's own
 * maintenance on PGlite), so plans match the data: before each scenario, as the previous one changed
 * the tables. These machines run PostgreSQL with autovacuum off.
 */
/**
 * Before each scenario: on PostgreSQL the tables vacuumed and analyzed (as autovacuum keeps them in
 * production) and a checkpoint taken, so that neither the scenario nor its no-op shares the machine with
 * catching up on the previous scenario's writes; on PGlite analyzed.
 */
async function settle(options: DatabaseOptions, attempt = 1): Promise<void> {
  const db = await openDatabase(options);
  try {
    if ('url' in options) {
      await db.sql.exec('VACUUM (ANALYZE)');
      await db.sql.exec('CHECKPOINT').catch(() => undefined); // needs a superuser or pg_checkpoint; else skipped
    } else {
      // Through the server's PGlite socket; the server's own maintenance vacuums PGlite. The socket takes
      // one client at a time: right after another one (growLicenses) left, it may refuse this one.
      try {
        await db.sql.exec('ANALYZE');
      } catch (err) {
        if (attempt >= 5 || !['EPIPE', 'ECONNRESET'].includes((err as NodeJS.ErrnoException).code ?? '')) throw err;
        await db.close().catch(() => undefined);
        await new Promise((resolve) => setTimeout(resolve, 500));
        return settle(options, attempt + 1);
      }
    }
  } finally {
    await db.close().catch(() => undefined);
  }
}

/**
 * Fills the tenant up to `total` licenses (copies of the bench license with their own keys, each with
 * one active device), in bulk SQL through the running server's database.
 */
async function growLicenses(options: DatabaseOptions, licenseId: string, total: number): Promise<void> {
  const db = await openDatabase(options);
  try {
    const [row] = await db.sql.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM "License" WHERE "tenantId" = (SELECT "tenantId" FROM "License" WHERE id = $1::uuid)`,
      [licenseId],
    );
    const add = total - (row?.n ?? 0);
    if (add <= 0) return;
    await db.sql.query(
      `WITH src AS (SELECT * FROM "License" WHERE id = $1::uuid),
            l AS (
              INSERT INTO "License" (id, "tenantId", "productId", "editionId", key, type, provisioning, "clientType", "maxActivations",
                                     "deploymentMode", "allowOffline", "fingerprintMatch", features, "activationsUsed", "updatedAt")
              SELECT gen_random_uuid(), src."tenantId", src."productId", src."editionId", 'LIC-SCALE-' || md5(random()::text || g), src.type,
                     src.provisioning, src."clientType", src."maxActivations", src."deploymentMode", src."allowOffline", src."fingerprintMatch",
                     src.features, 1, now()
                FROM src, generate_series(1, $2::int) AS g
              RETURNING id, "tenantId", "productId", "customerId"
            )
       INSERT INTO "Activation" (id, "tenantId", "licenseId", "productId", "customerId", fingerprint, "activeFingerprint", status)
       SELECT gen_random_uuid(), l."tenantId", l.id, l."productId", l."customerId", 'scale-' || l.id, 'scale-' || l.id, 'ACTIVE' FROM l`,
      [licenseId, add],
    );
    await db.sql.exec('ANALYZE "License", "Activation"');
  } finally {
    await db.close();
  }
}

interface Row {
  scenario: string;
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  ratio?: number;
  /** What `ratio` compares with, when it is not the no-op mutation. */
  ratioTo?: string;
  /** The no-op's req/s in the slices interleaved with this scenario's, which `ratio` compares with. */
  baselineRps?: number;
  /** CPU time per request, in ms: the server process (with PGlite inside it), and PostgreSQL's processes. */
  serverCpu?: number;
  dbCpu?: number;
}

/**
 * CPU seconds used so far by the server process and by every PostgreSQL process of this machine (so,
 * per request, what each side spent, even when both are busy and throughput alone cannot tell which
 * one limits it). Linux /proc only; null elsewhere. PostgreSQL processes by pid, in ticks.
 */
function cpuSeconds(serverPid: number): { server: number; db: Map<string, number> } | null {
  const ticks = (pid: string) => {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return { comm: stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')), ticks: Number(fields[11]) + Number(fields[12]) };
    } catch {
      return null;
    }
  };
  const server = ticks(String(serverPid));
  if (!server) return null;
  const db = new Map<string, number>();
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const t = ticks(pid);
    if (t?.comm === 'postgres') db.set(pid, t.ticks);
  }
  return { server: server.ticks / CLOCK_TICKS, db };
}
/** CPU seconds PostgreSQL processes used between two readings (a process that ended meanwhile is not counted). */
function dbSecondsBetween(before: Map<string, number>, after: Map<string, number>): number {
  let ticks = 0;
  for (const [pid, t] of after) ticks += t - (before.get(pid) ?? 0);
  return ticks / CLOCK_TICKS;
}
/** USER_HZ, 100 on every Linux this runs on. */
const CLOCK_TICKS = 100;

/** A stream of requests of one kind: `body(i)` for the i-th request of the scenario, warm-up included. */
interface Load {
  body: (i: number) => unknown;
  /** A fragment every successful answer contains (else the answer counts as an error). */
  success?: string;
  next: number;
}
const loadOf = (body: (i: number) => unknown, success?: string): Load => ({ body, success, next: 0 });
const ping = () => loadOf(() => persisted('Ping'), '"noop":true');

/** What the measured runs of one load added up to. */
interface Tally {
  requests: number;
  seconds: number;
  latencies: number[];
  errors: number;
  serverCpu: number;
  dbCpu: number;
  cpuKnown: boolean;
}
const tally = (): Tally => ({ requests: 0, seconds: 0, latencies: [], errors: 0, serverCpu: 0, dbCpu: 0, cpuKnown: true });

/**
 * Runs `load` for `duration` seconds with autocannon; with `into`, adds what it measured (requests,
 * each response's latency, errors, CPU seconds of the server and of PostgreSQL). A successful answer
 * contains `load.success`: anything else (a LicensingError such as RATE_LIMITED, a GraphQL error)
 * counts as an error, so a fast refusal never passes for throughput.
 */
async function drive(server: Server, load: Load, duration: number, into?: Tally): Promise<void> {
  let failed = 0;
  const before = into ? cpuSeconds(server.proc.pid!) : null;
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      {
        url: `${server.url}/graphql`,
        connections: CONNECTIONS,
        duration,
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        requests: [
          {
            setupRequest: (req) => ({ ...req, body: JSON.stringify(load.body(load.next++)) }),
            onResponse: (status, responseBody) => {
              if (load.success && status === 200 && !responseBody.includes(load.success)) failed++;
            },
          },
        ],
      },
      (err, r) => (err ? reject(err) : resolve(r)),
    );
    if (into) instance.on('response', (_client, _status, _bytes, responseTime) => into.latencies.push(responseTime));
  });
  if (!into) return;
  const after = cpuSeconds(server.proc.pid!);
  into.requests += result.requests.total;
  into.seconds += result.duration;
  into.errors += result.errors + result.non2xx + result.timeouts + failed;
  if (before && after) {
    into.serverCpu += after.server - before.server;
    into.dbCpu += dbSecondsBetween(before.db, after.db);
  } else into.cpuKnown = false;
}

function rowOf(scenario: string, t: Tally): Row {
  const sorted = Float64Array.from(t.latencies).sort();
  const pct = (q: number) => (sorted.length ? Math.round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! * 10) / 10 : 0);
  return {
    scenario,
    rps: t.seconds > 0 ? t.requests / t.seconds : 0,
    p50: pct(0.5),
    p99: pct(0.99),
    errors: t.errors,
    ...(t.cpuKnown && t.requests > 0 ? { serverCpu: (t.serverCpu * 1000) / t.requests, dbCpu: (t.dbCpu * 1000) / t.requests } : {}),
  };
}

/** One load on its own: warmed up (JIT, prepared statements on every pooled connection), then measured. */
async function measure(server: Server, scenario: string, load: Load): Promise<Row> {
  if (WARMUP > 0) await drive(server, load, WARMUP);
  const t = tally();
  await drive(server, load, DURATION, t);
  return rowOf(scenario, t);
}

/** Seconds of one slice of the interleaved measurement. */
const SLICE = 2;

/**
 * A scenario measured against the no-op in alternating slices of SLICE seconds (no-op then scenario,
 * then scenario then no-op, ...), DURATION seconds of each in all, after a warm-up of both on a settled
 * database; its ratio is its req/s over the no-op's in those slices. The speed of a shared machine
 * swings by half or more within a minute (other tenants, CPU frequency): measured side by side, both
 * sides see the same swings. The scenario's own background work (its audit seals, PostgreSQL writing
 * its pages out) can spill a few milliseconds into the next no-op slice.
 */
async function compared(server: Server, live: DatabaseOptions, scenario: string, load: Load): Promise<Row> {
  await settle(live);
  const base = ping();
  if (WARMUP > 0) await drive(server, load, WARMUP);
  await drive(server, base, 1);
  const op = tally();
  const noop = tally();
  for (let round = 0; round < Math.max(1, Math.round(DURATION / SLICE)); round++) {
    const order: [Load, Tally][] = round % 2 === 0 ? [[base, noop], [load, op]] : [[load, op], [base, noop]];
    for (const [l, t] of order) await drive(server, l, SLICE, t);
  }
  const row = rowOf(scenario, op);
  row.baselineRps = rowOf('no-op mutation', noop).rps;
  row.ratio = row.rps / row.baselineRps;
  return row;
}

async function runDialect(dialect: 'pglite' | 'postgres'): Promise<Row[]> {
  let env: Record<string, string>;
  let cleanup: () => Promise<void>;
  if (dialect === 'pglite') {
    const dir = mkdtempSync(path.join(tmpdir(), 'tessera-bench-'));
    env = { TESSERA_DATA_DIR: dir };
    cleanup = async () => rmSync(dir, { recursive: true, force: true });
  } else {
    const name = `tessera_bench_${randomBytes(4).toString('hex')}`;
    const admin = new pg.Client({ connectionString: pgBase });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name}`);
    await admin.end();
    const u = new URL(pgBase);
    u.pathname = `/${name}`;
    env = { DATABASE_URL: u.toString(), TESSERA_MASTER_KEY: randomBytes(32).toString('base64') };
    cleanup = async () => {
      const a = new pg.Client({ connectionString: pgBase });
      await a.connect();
      await a.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await a.end();
    };
  }
  const server = await startServer(env);
  const dbOptions: DatabaseOptions = env.DATABASE_URL ? { url: env.DATABASE_URL } : { dataDir: path.join(env.TESSERA_DATA_DIR!, 'pg') };
  let stopped = false;
  let sweep: Row;
  try {
    const { token, fixture } = await setUp(server.url, env);
    const seats = await setUpSeatsAndUsage(server.url, token);
    const live: DatabaseOptions = env.DATABASE_URL ? { url: env.DATABASE_URL, poolSize: 1 } : { socketDir: env.TESSERA_DATA_DIR! };
    const { key, devices } = fixture;
    const run = randomBytes(3).toString('hex');
    // Warm-up: JIT, caches, connection pools.
    await drive(server, ping(), WARMUP + DURATION);
    const rows: Row[] = [];
    rows.push(await measure(server, 'no-op mutation', ping()));
    const scenarios: [string, (i: number) => unknown, string][] = [
      ['activate (new device)', (i) => persisted('Activate', { input: { key, fingerprint: `fp-${run}-${i}` } }), '"ActivateSuccess"'],
      ['heartbeat', (i) => persisted('Heartbeat', { input: { key, fingerprint: devices[i % devices.length] } }), '"HeartbeatSuccess"'],
      ['validateLicense', (i) => persisted('ValidateLicense', { input: { key, fingerprint: devices[i % devices.length] } }), '"valid":true'],
      ['checkoutSeat (new device)', (i) => persisted('CheckoutSeat', { input: { key: seats.floatingKey, fingerprint: `seat-${run}-${i}` } }), '"SeatLease"'],
      [
        'recordUsage (1 unit, new key)',
        (i) => persisted('RecordUsage', { input: { key: seats.meteredKey, meter: 'calls', quantity: 1, idempotencyKey: `use-${run}-${i}` } }),
        '"UsageTicket"',
      ],
    ];
    for (const [name, body, success] of scenarios) {
      if (!wanted(name)) continue;
      rows.push(await compared(server, live, name, loadOf(body, success)));
    }

    // Scale: the lookups and writes are indexed, so throughput should not depend on how many licenses
    // (and devices) the database holds. Measured with 1,000 and then 100,000 licenses of the tenant.
    if (wanted('scale')) {
      for (const total of [1_000, 100_000]) {
        await growLicenses(live, Buffer.from(fixture.licenseId, 'base64').toString().split(':')[1]!, total);
        const at = `${total / 1000}k licenses`;
        rows.push(await compared(server, live, `validateLicense @ ${at}`, loadOf((i) => persisted('ValidateLicense', { input: { key, fingerprint: devices[i % devices.length] } }), '"valid":true')));
        rows.push(await compared(server, live, `heartbeat @ ${at}`, loadOf((i) => persisted('Heartbeat', { input: { key, fingerprint: devices[i % devices.length] } }), '"HeartbeatSuccess"')));
      }
    }
    rows[0]!.ratio = 1;
    await server.stop();
    stopped = true;
    sweep = await measureLeaseSweep(dbOptions, env, seats.floatingLicenseId, 10_000);
    return [...rows, sweep];
  } finally {
    if (!stopped) await server.stop();
    await cleanup();
  }
}

/** Runs a benchmark script in its own process and returns the JSON object it prints last. */
function child(script: string, args: string[]): Promise<any> {
  return new Promise((resolve, reject) => {
    const proc = spawn(path.join(root, 'node_modules/.bin/tsx'), [script, ...args], { cwd: path.dirname(script), stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    proc.stdout.on('data', (c: Buffer) => (out += c.toString()));
    proc.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`${path.basename(script)} exited ${code}`));
      try {
        resolve(JSON.parse(out.slice(out.indexOf('{'), out.lastIndexOf('}') + 1)));
      } catch (err) {
        reject(new Error(`${path.basename(script)} printed no JSON: ${(err as Error).message}`));
      }
    });
  });
}

/** Events delivered to 1,000 graphql-ws subscribers: burst deliveries per second, paced p50/p99 latency. */
async function fanout(dialect: 'pglite' | 'postgres', noopRps: number): Promise<Row> {
  const r = await child(path.join(root, 'server/bench/fanout.ts'), dialect === 'postgres' ? ['--postgres'] : []);
  const rps = r.burst.deliveriesPerSecond as number;
  return {
    scenario: `subscription fan-out to ${r.subscribers} subscribers (deliveries/s; latency paced at ${r.paced.eventsPerSecond} events/s)`,
    rps,
    p50: Number(r.paced.latencyMs.p50),
    p99: Number(r.paced.latencyMs.p99),
    errors: r.burst.expected - r.burst.delivered + (r.paced.expected - r.paced.delivered),
    ratio: rps / noopRps,
  };
}

/** The SDK's offline `verifyLicenseFile`, in this machine's one process: no server, no database. */
async function offlineVerify(): Promise<Row> {
  const r = await child(path.join(root, 'sdk/bench/verify.ts'), ['--json']);
  return {
    scenario: 'offline verifyLicenseFile (SDK, cached keys)',
    rps: 1e6 / r.verifyMicros,
    p50: Number((r.p50Micros / 1000).toFixed(2)),
    p99: Number((r.p99Micros / 1000).toFixed(2)),
    errors: 0,
    ratio: r.ratio,
    ratioTo: 'a raw Ed25519 verify',
  };
}

async function postgresReachable(): Promise<boolean> {
  const c = new pg.Client({ connectionString: pgBase, connectionTimeoutMillis: 3000 });
  try {
    await c.connect();
    await c.end();
    return true;
  } catch {
    return false;
  }
}

const results: Record<string, Row[]> = {};
for (const dialect of ['pglite', 'postgres'] as const) {
  if (values.only && values.only !== dialect) continue;
  if (dialect === 'postgres' && !(await postgresReachable())) {
    console.log(`PostgreSQL not reachable at ${pgBase}: skipped`);
    continue;
  }
  console.log(`running ${dialect} (${DURATION}s per scenario, ${CONNECTIONS} connections)...`);
  results[dialect] = await runDialect(dialect);
  if (wanted('fan-out')) results[dialect].push(await fanout(dialect, results[dialect][0]!.rps));
}
if (wanted('verify')) results.sdk = [await offlineVerify()];

const machine = `${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
console.log(`\nTessera benchmark — ${new Date().toISOString()} — ${machine}`);
console.log('| database | scenario | req/s | p50 ms | p99 ms | errors | no-op req/s in its slices | ratio to no-op | server CPU ms/req | PostgreSQL CPU ms/req |');
console.log('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|');
const ms = (v: number | undefined) => (v === undefined ? '' : v.toFixed(2));
for (const [dialect, rows] of Object.entries(results)) {
  for (const r of rows) {
    const ratio = r.ratio === undefined ? 'n/a (ms in p50/p99)' : `${r.ratio.toFixed(2)}x${r.ratioTo ? ` (to ${r.ratioTo})` : ''}`;
    const db = dialect === 'postgres' ? ms(r.dbCpu) : 'in server';
    console.log(`| ${dialect} | ${r.scenario} | ${r.rps.toFixed(0)} | ${r.p50} | ${r.p99} | ${r.errors} | ${r.baselineRps?.toFixed(0) ?? ''} | ${ratio} | ${ms(r.serverCpu)} | ${r.serverCpu === undefined ? '' : db} |`);
  }
}
for (const [dialect, rows] of Object.entries(results)) {
  for (const op of ['validateLicense', 'heartbeat']) {
    const small = rows.find((r) => r.scenario === `${op} @ 1k licenses`);
    const large = rows.find((r) => r.scenario === `${op} @ 100k licenses`);
    if (small && large) console.log(`${dialect}: ${op} with 100k licenses / with 1k = ${(large.rps / small.rps).toFixed(2)}x`);
  }
}
const dir = path.join(root, 'server/bench/results');
mkdirSync(dir, { recursive: true });
const file = path.join(dir, `${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
writeFileSync(file, JSON.stringify({ date: new Date().toISOString(), machine, duration: DURATION, connections: CONNECTIONS, results }, null, 2));
console.log(`\nwrote ${path.relative(root, file)}`);
