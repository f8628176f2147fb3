import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import WebSocket from 'ws';
import { operationHash } from '../../../../sdk/src/client.ts';
import { freshPostgres, testDatabaseUrl } from '../../../test/harness.ts';
import { Proxy } from '../../../test/proxy.ts';
import { execute, sleep, subscribe, wsClient } from '../../../test/ws.ts';
import { generateKey } from '../licenses/keys.ts';

const root = path.resolve(import.meta.dirname, '../../../..');
const tsx = path.join(root, 'node_modules/.bin/tsx');
const masterKey = randomBytes(32).toString('base64');

async function startServer(env: Record<string, string>): Promise<{ proc: ChildProcess; url: string; output: () => string }> {
  // Node itself, not tsx's command (a wrapper process): a SIGKILL then ends the server, not only the
  // wrapper, which left the server running with nobody to stop it.
  const proc = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'server/src/main.ts')], {
    cwd: root,
    // One master key for every server of the run, as production requires with DATABASE_URL.
    env: { ...process.env, NODE_ENV: 'production', HOST: '127.0.0.1', PORT: '0', TESSERA_DEMO: '0', TESSERA_MASTER_KEY: masterKey, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${out}`)), 60_000);
    proc.stdout!.on('data', () => {
      const m = /serving at (http:\/\/[^\s]+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!.replace('localhost', '127.0.0.1'));
      }
    });
    proc.once('exit', (code) => reject(new Error(`server exited with ${code}:\n${out}`)));
  });
  return { proc, url, output: () => out };
}

const post = async (url: string, payload: unknown, token?: string) => {
  const r = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(payload),
    signal: AbortSignal.timeout(20_000),
  });
  return { status: r.status, retryAfter: r.headers.get('retry-after'), body: (await r.json()) as { data?: any; errors?: { message: string; extensions?: { code?: string } }[] } };
};
const gql = (url: string, token: string, query: string) => post(url, { query }, token);
/** A POST on its own connection (no keep-alive reuse), so the test knows exactly which request is in flight. */
function postAlone(url: string, token: string, query: string): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      `${url}/graphql`,
      { method: 'POST', agent: false, headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` } },
      (res) => {
        let text = '';
        res.on('data', (d) => (text += d)).on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify({ query }));
  });
}

/** Polls `done` (every 100 ms, for up to 10 s). */
async function waitFor(done: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (await done()) return;
    await sleep(100);
  }
  throw new Error('timed out');
}

const health = async (url: string) => (await fetch(`${url}/health`, { signal: AbortSignal.timeout(20_000) })).status;

/** Waits for /health to answer 200 again (the pool reconnects on its next query). */
async function healthy(url: string): Promise<number> {
  let status = 0;
  for (let i = 0; i < 50 && status !== 200; i++) {
    status = await health(url).catch(() => 0);
    if (status !== 200) await sleep(200);
  }
  return status;
}

/** A fresh database, a TCP proxy to it, a production server spawned behind the proxy, and a tenant's OWNER token. */
async function serverBehindProxy(extraEnv: Record<string, string> = {}) {
  const db = await freshPostgres(testDatabaseUrl!);
  const target = new URL(testDatabaseUrl!);
  const proxy = new Proxy({ host: target.hostname, port: Number(target.port || 5432) });
  await proxy.up();
  const viaProxy = new URL(db.url);
  viaProxy.host = `127.0.0.1:${proxy.port}`;
  const dataDir = mkdtempSync(path.join(tmpdir(), 'tessera-rel-'));
  const env = { DATABASE_URL: viaProxy.toString(), TESSERA_DATA_DIR: dataDir, LOG_LEVEL: 'debug', ...extraEnv };
  const server = await startServer(env);
  const { stdout } = await promisify(execFile)(tsx, [path.join(root, 'server/src/cli.ts'), 'tenant', 'create', 'rel', '--json'], {
    env: { ...process.env, ...env, DATABASE_URL: db.url },
  });
  const token = (JSON.parse(stdout) as { adminToken: string }).adminToken;
  return {
    db,
    proxy,
    server,
    token,
    async close() {
      if (server.proc.exitCode === null) server.proc.kill('SIGKILL');
      await proxy.down();
      await db.drop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

describe.skipIf(!testDatabaseUrl)('reliability on PostgreSQL (a spawned server behind a TCP proxy)', () => {
  let db: Awaited<ReturnType<typeof freshPostgres>>;
  let proxy: Proxy;
  let server: Awaited<ReturnType<typeof startServer>>;
  let token: string;
  let close: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    ({ db, proxy, server, token, close } = await serverBehindProxy());
  });

  afterAll(async () => {
    await close?.();
  });

  it('fails fast with a retryable error while the database is away, keeps no partial state, and recovers without a restart', async () => {
    expect(await health(server.url)).toBe(200);
    expect((await gql(server.url, token, '{ tenant { slug } }')).body.data.tenant.slug).toBe('rel');

    await proxy.down();
    const started = performance.now();
    expect(await health(server.url)).toBe(503);
    const failed = await gql(server.url, token, 'mutation { createCustomer(input: { name: "During outage" }) { __typename } }');
    expect(performance.now() - started).toBeLessThan(5_000);
    expect(failed.body.errors?.[0]?.extensions?.code).toBe('SERVICE_UNAVAILABLE');
    expect(failed.status).toBe(503);
    expect(Number(failed.retryAfter)).toBeGreaterThan(0);
    // The SDK's way in (by hash, compiled by graphql-jit) fails the same way.
    const validate = await post(server.url, {
      operationName: 'ValidateLicense',
      variables: { input: { key: generateKey('LIC') } },
      extensions: { persistedQuery: { version: 1, sha256Hash: operationHash('ValidateLicense') } },
    });
    expect(validate.body.errors?.[0]?.extensions?.code).toBe('SERVICE_UNAVAILABLE');
    expect(validate.status).toBe(503);
    // The server process is still there.
    expect(server.proc.exitCode).toBeNull();

    await proxy.up();
    let status = 0;
    for (let i = 0; i < 50 && status !== 200; i++) {
      status = await health(server.url);
      if (status !== 200) await new Promise((r) => setTimeout(r, 200));
    }
    expect(status).toBe(200);
    const created = await gql(server.url, token, 'mutation { createCustomer(input: { name: "After outage" }) { __typename } }');
    expect(created.body.data?.createCustomer.__typename).toBe('Customer');
    const names = await gql(server.url, token, '{ customers(first: 10) { edges { node { name } } } }');
    expect(names.body.data.customers.edges.map((e: { node: { name: string } }) => e.node.name)).toEqual(['After outage']);
  });

  it('fails with a retryable error, not a hang, while the database accepts connections and never answers', async () => {
    expect(await health(server.url)).toBe(200);
    proxy.silence();
    try {
      // Each waits out the connection timeout (TESSERA_DB_CONNECT_TIMEOUT_MS, 5 s by default); before it
      // existed they never answered, and the 20 s limit of post() and health() ended them.
      expect(await health(server.url)).toBe(503);
      const failed = await gql(server.url, token, 'mutation { createCustomer(input: { name: "Blackholed" }) { __typename } }');
      expect(failed.body.errors?.[0]?.extensions?.code).toBe('SERVICE_UNAVAILABLE');
      expect(failed.status).toBe(503);
      expect(Number(failed.retryAfter)).toBeGreaterThan(0);
      expect(server.proc.exitCode).toBeNull();
    } finally {
      proxy.restore();
    }
    expect(await healthy(server.url)).toBe(200);
    const names = await gql(server.url, token, '{ customers(first: 10) { edges { node { name } } } }');
    expect(names.body.data.customers.edges.map((e: { node: { name: string } }) => e.node.name)).not.toContain('Blackholed');
  });

  it('cuts short the statements of open connections whose database goes silent, with a retryable error, and recovers', async () => {
    const s = await serverBehindProxy({ TESSERA_DB_QUERY_TIMEOUT_MS: '1500' });
    try {
      const validate = () =>
        post(s.server.url, {
          operationName: 'ValidateLicense',
          variables: { input: { key: generateKey('LIC') } },
          extensions: { persistedQuery: { version: 1, sha256Hash: operationHash('ValidateLicense') } },
        });
      // Connections opened on both pools (the raw one of the hot paths, Prisma's), idle when the silence starts.
      expect((await gql(s.server.url, s.token, 'mutation { createCustomer(input: { name: "Before" }) { __typename } }')).body.data?.createCustomer.__typename).toBe('Customer');
      expect((await validate()).body.data?.validateLicense.code).toBe('LICENSE_NOT_FOUND');
      // Statements sent now reach nobody and nothing comes back: before the answer timeout, these waited
      // until the operating system gave the connection up (and post()'s 20 s limit ended them here).
      s.proxy.hold();
      const [read, written, validated] = await Promise.all([
        gql(s.server.url, s.token, '{ customers(first: 10) { edges { node { name } } } }'),
        gql(s.server.url, s.token, 'mutation { createCustomer(input: { name: "Silent" }) { __typename } }'),
        validate(),
      ]);
      for (const answer of [read, written, validated]) {
        expect(answer.body.errors?.[0]?.extensions?.code, JSON.stringify(answer.body)).toBe('SERVICE_UNAVAILABLE');
        expect(answer.status).toBe(503);
        expect(Number(answer.retryAfter)).toBeGreaterThan(0);
      }
      expect(s.server.proc.exitCode).toBeNull();
      s.proxy.release();
      expect(await healthy(s.server.url)).toBe(200);
      expect((await validate()).body.data?.validateLicense.code).toBe('LICENSE_NOT_FOUND');
      const names = await gql(s.server.url, s.token, '{ customers(first: 10) { edges { node { name } } } }');
      expect(names.body.data.customers.edges.map((e: { node: { name: string } }) => e.node.name)).toEqual(['Before']);
    } finally {
      await s.close();
    }
  });

  it('graphql-ws during the outage: a new operation gets a retryable error, a new socket closes with 1013, the socket and its feed stay', async () => {
    const url = `${server.url.replace('http', 'ws')}/graphql`;
    const socket = wsClient(url, token);
    try {
      const feed = subscribe<{ type: string }>(socket.client, 'subscription { activity { type } }', {}, (d) => d.activity);
      await sleep(200);
      expect((await execute(socket.client, '{ tenant { slug } }')).data).toEqual({ tenant: { slug: 'rel' } });
      const logged = server.output().length;

      await proxy.down();
      try {
        const started = performance.now();
        const failed = await execute(socket.client, '{ tenant { slug } }');
        expect(failed.errors?.map((e) => e.extensions?.code)).toEqual(['SERVICE_UNAVAILABLE']);
        const second = subscribe(socket.client, 'subscription { complianceAlerts { type } }');
        await waitFor(() => second.errors.length > 0);
        expect((second.errors.flat() as { extensions?: { code?: string } }[]).map((e) => e.extensions?.code)).toEqual(['SERVICE_UNAVAILABLE']);
        // A socket that cannot be authenticated now is closed with a code graphql-ws clients retry.
        const fresh = wsClient(url, token);
        expect(await Promise.race([fresh.closed, sleep(10_000).then(() => 'open')])).toBe(1013);
        expect(performance.now() - started).toBeLessThan(10_000);
        expect(await Promise.race([socket.closed, sleep(300).then(() => 'open')])).toBe('open');
        expect(feed.done).toBe(false);
        expect(feed.errors).toEqual([]);
      } finally {
        await proxy.up();
      }

      // What went wrong is in the structured log (a line for each of the three), not printed by graphql-ws
      // (console.error, the raw error and its stack). The background sweeps' own complaints may interleave.
      const lines = server.output().slice(logged).split('\n');
      expect(lines.filter((l) => !l.startsWith('{') && /check your implementation|apiToken\.findUnique/.test(l))).toEqual([]);
      const logLines = lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { msg: string });
      expect(logLines.filter((l) => l.msg === 'request failed: the database is unavailable').length).toBeGreaterThanOrEqual(3);

      // Back up: the same socket and a new one work again without a restart.
      await waitFor(async () => (await health(server.url)) === 200);
      expect((await execute(socket.client, '{ tenant { slug } }')).data).toEqual({ tenant: { slug: 'rel' } });
      const again = wsClient(url, token);
      expect((await execute(again.client, '{ tenant { slug } }')).data).toEqual({ tenant: { slug: 'rel' } });
      await again.dispose();
      await gql(server.url, token, 'mutation { createProduct(input: { name: "After outage", code: "after-outage" }) { __typename } }');
      expect((await feed.until((xs) => xs.some((e) => e.type === 'product.created'))).length).toBeGreaterThan(0);
    } finally {
      await socket.dispose();
    }
  });

  it('a write kept waiting past its transaction\'s time limit answers a retryable SERVICE_UNAVAILABLE and leaves nothing', async () => {
    // Another session holds the tenant's row: the new customer's foreign-key check waits on it, inside a
    // transaction that outlives its limit (5 s) meanwhile.
    const other = new pg.Client({ connectionString: db.url });
    await other.connect();
    try {
      await other.query('BEGIN');
      await other.query('SELECT 1 FROM "Tenant" FOR UPDATE');
      const stalled = post(server.url, { query: 'mutation { createCustomer(input: { name: "Stalled" }) { __typename } }' }, token);
      await new Promise((r) => setTimeout(r, 6_500));
      await other.query('COMMIT');
      const answered = await stalled;
      expect(answered.body.errors?.[0]?.extensions?.code, JSON.stringify(answered.body)).toBe('SERVICE_UNAVAILABLE');
      expect(answered.status).toBe(503);
      expect(Number(answered.retryAfter)).toBeGreaterThan(0);
    } finally {
      await other.end();
    }
    const names = await gql(server.url, token, '{ customers(first: 10) { edges { node { name } } } }');
    expect(names.body.data.customers.edges.map((e: { node: { name: string } }) => e.node.name)).toEqual(['After outage']);
  });

  it('SIGTERM lets an in-flight request finish, closes sockets and streams, then exits 0', async () => {
    // A graphql-ws client and an SSE subscription are open when the signal arrives.
    const ws = new WebSocket(`${server.url.replace('http', 'ws')}/graphql`, 'graphql-transport-ws');
    const wsClosed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
    await new Promise<void>((resolve, reject) => {
      ws.on('open', () => ws.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${token}` } })));
      ws.on('message', (m) => (JSON.parse(String(m)).type === 'connection_ack' ? resolve() : undefined));
      ws.on('error', reject);
    });
    const sse = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query: 'subscription { activity { type } }' }),
    });
    expect(sse.status).toBe(200);
    const sseEnded = sse.text().then(() => 'ended', () => 'ended');
    // Hold the database traffic so the next request is in flight when the signal arrives.
    proxy.hold();
    const inFlight = postAlone(server.url, token, '{ customers(first: 10) { edges { node { name } } } }');
    await new Promise((r) => setTimeout(r, 300));
    const exited = new Promise<number | null>((resolve) => server.proc.once('exit', (code) => resolve(code)));
    server.proc.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    // Draining: no new connections are accepted.
    await expect(fetch(`${server.url}/health`, { signal: AbortSignal.timeout(3_000) })).rejects.toThrow();
    proxy.release();
    const answered = await inFlight.catch((err) => {
      throw new Error(`${(err as Error).message}\n${server.output()}`);
    });
    expect(answered.body.data.customers.edges).toHaveLength(1);
    expect(await wsClosed).toBe(1001);
    expect(await sseEnded).toBe('ended');
    expect(await exited).toBe(0);
    expect(server.output()).toMatch(/draining and shutting down/);
    // Structured request logs, without credentials.
    const requests = server
      .output()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { msg: string; status?: number; requestId?: string; ms?: number })
      .filter((l) => l.msg === 'request');
    expect(requests.some((l) => l.status === 200 && l.requestId && typeof l.ms === 'number')).toBe(true);
    expect(requests.some((l) => l.status === 503)).toBe(true);
    expect(server.output()).not.toContain(token);
  });
});

describe.skipIf(!testDatabaseUrl)('a spawned server whose database connections drop under it', () => {
  let db: Awaited<ReturnType<typeof freshPostgres>>;
  let proxy: Proxy;
  let server: Awaited<ReturnType<typeof startServer>>;
  let token: string;
  let close: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    ({ db, proxy, server, token, close } = await serverBehindProxy());
  });

  afterAll(async () => {
    await close?.();
  });

  it('stays up when the connections drop right after a write, round after round, and recovers without a restart', async () => {
    const names: string[] = [];
    for (let round = 1; round <= 5; round++) {
      expect(await healthy(server.url), server.output()).toBe(200);
      const created = await gql(server.url, token, `mutation { createCustomer(input: { name: "c${round}" }) { __typename } }`);
      expect(created.body.data?.createCustomer.__typename).toBe('Customer');
      names.push(`c${round}`);
      // The write's audit seal (a raw transaction on a connection checked out of the pool) is in flight
      // or about to start when the connections go: a checked-out connection ending must not end the process.
      await sleep(round * 5);
      await proxy.down();
      const failed = await gql(server.url, token, 'mutation { createCustomer(input: { name: "During outage" }) { __typename } }');
      expect(failed.body.errors?.[0]?.extensions?.code).toBe('SERVICE_UNAVAILABLE');
      expect(failed.status).toBe(503);
      await sleep(500);
      expect(server.proc.exitCode, server.output().slice(-3000)).toBeNull();
      await proxy.up();
    }
    expect(await healthy(server.url)).toBe(200);
    const created = await gql(server.url, token, 'mutation { createCustomer(input: { name: "after" }) { __typename } }');
    expect(created.body.data?.createCustomer.__typename).toBe('Customer');
    const listed = await gql(server.url, token, '{ customers(first: 10) { edges { node { name } } } }');
    expect(listed.body.data.customers.edges.map((e: { node: { name: string } }) => e.node.name).sort()).toEqual([...names, 'after'].sort());
    expect(server.proc.exitCode).toBeNull();
  });

  /** What a caller could learn of the server from an error: driver or ORM text, addresses, files, frames. */
  const LEAKS = /prisma|pg\/lib|127\.0\.0\.1|:\d{4,5}\b|\.ts:\d+|\bat \/|node_modules/i;

  it('answers the routes beside /graphql with a masked, retryable 503 while the database is away, and serves them again after', async () => {
    const auth = { authorization: `Bearer ${token}` };
    const routes = [
      { path: '/.well-known/jwks.json?tenant=rel', headers: {}, after: 200 },
      { path: '/audit/export', headers: auth, after: 200 },
      // An unknown activation: a 404 once the database answers again.
      { path: `/offline/bundle?activationId=${randomUUID()}`, headers: auth, after: 404 },
    ];
    expect(await healthy(server.url)).toBe(200);
    for (const r of routes) expect((await fetch(`${server.url}${r.path}`, { headers: r.headers })).status, r.path).toBe(r.after);

    await proxy.down();
    for (const r of routes) {
      const res = await fetch(`${server.url}${r.path}`, { headers: r.headers, signal: AbortSignal.timeout(20_000) });
      const text = await res.text();
      expect(res.status, `${r.path}: ${text}`).toBe(503);
      expect(Number(res.headers.get('retry-after')), r.path).toBeGreaterThan(0);
      expect(res.headers.get('content-type')).toMatch(/^application\/json/);
      expect(JSON.parse(text)).toEqual({ errors: [{ message: expect.any(String), extensions: { code: 'SERVICE_UNAVAILABLE', retryable: true } }] });
      expect(text).not.toMatch(LEAKS);
    }
    expect(server.proc.exitCode).toBeNull();
    // The operator's log has what the callers were not shown: one warning per route, without secrets.
    const warnings = () =>
      server
        .output()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { level: number; msg: string; route?: string; error?: { message: string; stack?: string } })
        .filter((l) => l.route && l.msg === 'request failed: the database is unavailable');
    await expect.poll(() => new Set(warnings().map((l) => l.route))).toEqual(new Set(['/.well-known/jwks.json', '/audit/export', '/offline/bundle']));
    expect(warnings().every((l) => l.level === 40 && l.error?.message && l.error.stack?.includes(' at '))).toBe(true);
    expect(server.output()).not.toContain(token);

    await proxy.up();
    expect(await healthy(server.url)).toBe(200);
    for (const r of routes) expect((await fetch(`${server.url}${r.path}`, { headers: r.headers })).status, r.path).toBe(r.after);
  });

  it('cuts an audit export short when the database goes away in the middle, without a stack or a wait', async () => {
    // Four batches of 1000 events of 20 kB each: the client reads the headers and stops reading, so the
    // server has sent the first batch and read the second when the connections drop; the third fails.
    const direct = new pg.Client({ connectionString: db.url });
    await direct.connect();
    try {
      await direct.query(
        `INSERT INTO "AuditEvent" ("tenantId", type, "actorType", "subjectType", "subjectId", payload)
         SELECT t.id, 'test.bulk', 'system', 'Test', g::text, jsonb_build_object('filler', repeat('x', 20000))
           FROM "Tenant" t, generate_series(1, 4000) g WHERE t.slug = 'rel'`,
      );
    } finally {
      await direct.end();
    }
    expect(await healthy(server.url)).toBe(200);
    const res = await fetch(`${server.url}/audit/export`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(20_000) });
    expect(res.status).toBe(200);
    await sleep(1_000);
    await proxy.down();
    const read = await res.text().then(
      (text) => ({ ok: true as const, text }),
      (err: Error) => ({ ok: false as const, err }),
    );
    // A broken transfer, not a short file that looks complete, nor one that never ends (the timeout).
    expect(read.ok, read.ok ? `${read.text.length} characters` : String(read.err)).toBe(false);
    expect(read.ok ? '' : `${read.err.name} ${String((read.err as { cause?: unknown }).cause)}`).not.toMatch(/TimeoutError|AbortError/);
    expect(server.proc.exitCode).toBeNull();
    await expect.poll(() => server.output()).toMatch(/"route":"\/audit\/export".*"msg":"streamed response cut short: request failed: the database is unavailable"/);
    expect(server.output()).not.toMatch(/Unexpected error while handling request/);
    await proxy.up();
    expect(await healthy(server.url)).toBe(200);
    const again = await fetch(`${server.url}/audit/export`, { headers: { authorization: `Bearer ${token}` } });
    expect((await again.text()).trim().split('\n').length).toBeGreaterThan(4000);
  });
});

describe.skipIf(!testDatabaseUrl)('live feeds of a server whose database goes away while events still arrive (two servers, Redis)', () => {
  const redisUrl = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
  let a: Awaited<ReturnType<typeof serverBehindProxy>>;
  let b: Awaited<ReturnType<typeof startServer>>;
  let bDir: string;

  beforeAll(async () => {
    a = await serverBehindProxy({ REDIS_URL: redisUrl });
    bDir = mkdtempSync(path.join(tmpdir(), 'tessera-rel-b-'));
    b = await startServer({ DATABASE_URL: a.db.url, TESSERA_DATA_DIR: bDir, REDIS_URL: redisUrl, LOG_LEVEL: 'debug' });
  });

  afterAll(async () => {
    if (b && b.proc.exitCode === null) b.proc.kill('SIGKILL');
    await a?.close();
    if (bDir) rmSync(bDir, { recursive: true, force: true });
  });

  it('a license feed keeps its subscription through the outage and shows the change made meanwhile once the database is back', async () => {
    const { token } = a;
    const product = (await gql(b.url, token, 'mutation { createProduct(input: { name: "Feed", code: "feed" }) { ... on Product { id } } }')).body.data.createProduct.id;
    const edition = (await post(b.url, { query: 'mutation($i: CreateEditionInput!) { createEdition(input: $i) { ... on Edition { id } } }', variables: { i: { productId: product, name: 'Ed', code: 'ed', licenseType: 'PERPETUAL', maxActivations: 3 } } }, token)).body.data.createEdition.id;
    const license = (await post(b.url, { query: 'mutation($i: CreateLicenseInput!) { createLicense(input: $i) { ... on CreateLicensePayload { license { id } } } }', variables: { i: { editionId: edition } } }, token)).body.data.createLicense.license.id;

    const socket = wsClient(`${a.server.url.replace('http', 'ws')}/graphql`, token);
    try {
      const feed = subscribe<{ state: string; eventType: string | null }>(socket.client, 'subscription($id: ID!) { licenseLive(licenseId: $id) { state eventType } }', { id: license }, (d) => d.licenseLive);
      await feed.until((xs) => xs.length === 1);
      const logged = a.server.output().length;

      await a.proxy.down();
      try {
        // The other server, whose database is there, changes the license: the event reaches this one through Redis.
        const suspended = await post(b.url, { query: 'mutation($i: LicenseIdInput!) { suspendLicense(input: $i) { __typename } }', variables: { i: { licenseId: license } } }, token);
        expect(suspended.body.data?.suspendLicense.__typename, JSON.stringify(suspended.body)).toBe('License');
        await waitFor(() => feed.errors.length > 0 || a.server.output().slice(logged).includes('license feed: a read failed; retrying until the database is back'));
        // The read failed: no error reached the client (before, SERVICE_UNAVAILABLE, which ended the feed for good).
        expect(feed.errors).toEqual([]);
        expect(feed.done).toBe(false);
      } finally {
        await a.proxy.up();
      }
      expect((await feed.until((xs) => xs.some((x) => x.state === 'SUSPENDED'))).at(-1)).toEqual({ state: 'SUSPENDED', eventType: 'license.suspended' });
      expect(feed.errors).toEqual([]);
    } finally {
      await socket.dispose();
    }
  });
});
