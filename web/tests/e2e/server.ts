import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface Demo {
  tenant: string;
  email: string;
  password: string;
  apiToken: string;
}

export interface RunningServer {
  base: string;
  demo: Demo;
  /** The server's data dir: its embedded database answers PostgreSQL clients on the socket there (`host: dataDir`). */
  dataDir: string;
  stop(): Promise<void>;
}

const ROOT = path.resolve(import.meta.dirname, '../../..');

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** The real server (embedded PGlite in a temp dir) on a free port; it serves web/build too. `env` adds to its environment (NODE_ENV=production). */
export async function startServer(env: Record<string, string> = {}): Promise<RunningServer & { halt(): Promise<void>; resume(): Promise<void> }> {
  const port = await freePort();
  const dataDir = mkdtempSync(path.join(tmpdir(), 'tessera-e2e-'));
  let child: ChildProcess;
  try {
    child = await spawnServer(port, dataDir, env);
  } catch (e) {
    // Leave nothing behind when the server never came up.
    rmSync(dataDir, { recursive: true, force: true });
    throw e;
  }
  const demo = JSON.parse(readFileSync(path.join(dataDir, 'demo-credentials.json'), 'utf8')) as Demo;
  const halt = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
    }
  };
  return {
    base: `http://127.0.0.1:${port}`,
    demo,
    dataDir,
    /** Stops the server and keeps its data: an outage. */
    halt,
    /** Starts it again on the same port and data. */
    async resume() {
      child = await spawnServer(port, dataDir, env);
    },
    async stop() {
      await halt();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

async function spawnServer(port: number, dataDir: string, env: Record<string, string>): Promise<ChildProcess> {
  // Node itself, not tsx's command (a wrapper process), so that a SIGKILL ends the server too.
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'server/src/main.ts'], {
    cwd: ROOT,
    env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', TESSERA_DATA_DIR: dataDir, NODE_ENV: 'test', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (d) => (output += d));
  child.stderr?.on('data', (d) => (output += d));
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`server did not start in 220 s:\n${output}`)), 220_000);
      child.on('exit', (code) => reject(new Error(`server exited with ${code}:\n${output}`)));
      const check = () => {
        if (/serving at/.test(output)) {
          clearTimeout(timer);
          resolve();
        } else setTimeout(check, 100);
      };
      check();
    });
  } catch (e) {
    if (child.exitCode === null) child.kill('SIGKILL');
    throw e;
  }
  return child;
}

/** A GraphQL call with the demo's OWNER token, for what a device or a script would do. */
export async function gql<T = Record<string, unknown>>(base: string, token: string | null, query: string, variables: Record<string, unknown> = {}): Promise<T> {
  const res = await fetch(`${base}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await res.json()) as { data?: T; errors?: { message: string }[] };
  if (body.errors?.length) throw new Error(body.errors.map((e) => e.message).join('; '));
  return body.data as T;
}
