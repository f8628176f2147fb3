import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freshPostgres, testDatabaseUrl } from '../test/harness.ts';
import { type Instance, startInstance, stopInstance } from '../test/processes.ts';

// `pnpm start` as an operator meets it: src/main.ts in a process of its own, on the embedded database.
const dirs: string[] = [];
const instances: Instance[] = [];
afterAll(async () => {
  await Promise.all(instances.map(stopInstance));
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function dataDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'tessera-main-'));
  dirs.push(dir);
  return dir;
}

/** The start's failure: what the process printed before it exited. */
async function failedStart(env: Record<string, string>): Promise<string> {
  const started = startInstance(env).then((i) => {
    instances.push(i);
    throw new Error(`started at ${i.url}`);
  });
  const err = await started.catch((e: Error) => e);
  expect(err.message).toMatch(/^instance exited with 1:/);
  return err.message;
}

const STACK_FRAME = /^\s+at .+:\d+:\d+\)?$/m;

describe('start-up', () => {
  it('a bad setting fails the start with one line naming it, no stack trace', async () => {
    const output = await failedStart({ LOG_LEVEL: 'verbose', TESSERA_DATA_DIR: dataDir(), PORT: '0' });
    expect(output).toContain('Tessera failed to start: LOG_LEVEL must be one of');
    expect(output).not.toMatch(STACK_FRAME);
  });

  it('a port already taken fails the start plainly, before the demo tenant is made, and lets go of the data dir', async () => {
    const blocker: Server = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = String((blocker.address() as { port: number }).port);
    const dir = dataDir();
    const env = { TESSERA_DATA_DIR: dir, HOST: '127.0.0.1', TESSERA_MASTER_KEY: 'b'.repeat(64) };
    try {
      const output = await failedStart({ ...env, PORT: port });
      expect(output).toContain(`Tessera failed to start: listen EADDRINUSE: address already in use 127.0.0.1:${port}`);
      expect(output).not.toMatch(STACK_FRAME);
      expect(output).not.toContain('API token');
    } finally {
      blocker.close();
    }
    // Nothing left holding the data dir, and no demo tenant whose one-time token nobody saw.
    expect(readdirSync(dir).filter((f) => f === 'tessera.pid' || f.startsWith('.s.PGSQL'))).toEqual([]);
    expect(existsSync(path.join(dir, 'demo-credentials.json'))).toBe(false);

    const next = await startInstance({ ...env, PORT: '0' });
    instances.push(next);
    expect(next.output()).toContain('Created the "demo" tenant');
    expect(next.output()).toMatch(/API token \(OWNER, shown once\): tsr_/);
  }, 240_000);

  it('fails the start plainly, not a hang, when PostgreSQL accepts the connection and never answers', async () => {
    const sockets: Socket[] = [];
    const silent: Server = createServer((s) => sockets.push(s));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as { port: number }).port;
    try {
      const output = await failedStart({
        DATABASE_URL: `postgres://tessera@127.0.0.1:${port}/tessera`,
        TESSERA_MASTER_KEY: 'c'.repeat(64),
        TESSERA_DB_CONNECT_TIMEOUT_MS: '500',
        TESSERA_DATA_DIR: dataDir(),
        PORT: '0',
      });
      expect(output).toContain(`Tessera failed to start: cannot reach PostgreSQL at 127.0.0.1:${port} (`);
      expect(output).not.toMatch(STACK_FRAME);
      expect(sockets.length).toBeGreaterThan(0);
    } finally {
      for (const s of sockets) s.destroy();
      silent.close();
    }
  });

  it('refuses to start on PostgreSQL in production without TESSERA_MASTER_KEY, before opening the database', async () => {
    // Where DATABASE_URL points, a listener that counts who connects (and never answers).
    const sockets: Socket[] = [];
    const database: Server = createServer((s) => sockets.push(s));
    await new Promise<void>((resolve) => database.listen(0, '127.0.0.1', resolve));
    const port = (database.address() as { port: number }).port;
    try {
      const output = await failedStart({ NODE_ENV: 'production', DATABASE_URL: `postgres://tessera@127.0.0.1:${port}/tessera`, TESSERA_DATA_DIR: dataDir(), PORT: '0' });
      expect(output).toContain('Tessera failed to start: TESSERA_MASTER_KEY must be set when DATABASE_URL is (NODE_ENV=production)');
      expect(output).not.toMatch(STACK_FRAME);
      expect(sockets).toHaveLength(0);
    } finally {
      for (const s of sockets) s.destroy();
      database.close();
    }
  });

  it(`refuses to start with a master key that cannot open the signing keys in the database (${testDatabaseUrl ? 'PostgreSQL' : 'PGlite'})`, async () => {
    const fresh = testDatabaseUrl ? await freshPostgres(testDatabaseUrl) : undefined;
    try {
      const dir = dataDir();
      // On PostgreSQL every start gets a data dir of its own, as separate instances have.
      const env = (key?: string) => ({
        ...(fresh ? { DATABASE_URL: fresh.url, TESSERA_DEMO: '1' } : {}),
        TESSERA_DATA_DIR: fresh ? dataDir() : dir,
        HOST: '127.0.0.1',
        PORT: '0',
        ...(key ? { TESSERA_MASTER_KEY: key } : {}),
      });
      const first = randomBytes(32).toString('base64');
      const a = await startInstance(env(first));
      instances.push(a);
      // The demo tenant's signing key is made on first use: publishing its JWKS is one.
      const jwks = await fetch(`${a.url.replace('localhost', '127.0.0.1')}/.well-known/jwks.json?tenant=demo`);
      expect(((await jwks.json()) as { keys: unknown[] }).keys).toHaveLength(1);
      expect(await stopInstance(a)).toEqual({ code: 0, signal: null });

      const other = await failedStart(env(randomBytes(32).toString('hex')));
      expect(other).toContain('Tessera failed to start: TESSERA_MASTER_KEY cannot decrypt the signing keys or webhook secrets of 1 tenant in this database (demo): another master key encrypted them.');
      expect(other).not.toMatch(STACK_FRAME);
      // Without TESSERA_MASTER_KEY, the key generated in the data dir (on PGlite, made now: the first start had the variable).
      const generated = await failedStart(env());
      expect(generated).toMatch(/Tessera failed to start: the master key generated (now|earlier) in \S+master\.key cannot decrypt the signing keys/);

      const again = await startInstance(env(first));
      instances.push(again);
      expect(again.output()).toContain('serving at');
      // Stopped the moment it says it serves: it drains and exits 0, not killed by the signal undrained.
      expect(await stopInstance(again)).toEqual({ code: 0, signal: null });
    } finally {
      await Promise.all(instances.map(stopInstance));
      await fresh?.drop();
    }
  }, 240_000);
});
