import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { type Instance, startInstance, stopInstance } from '../test/processes.ts';

// The operator CLI as operators run it: a separate process on the embedded database, with and
// without a server holding the data dir.
const run = promisify(execFile);
const serverDir = path.resolve(import.meta.dirname, '..');
const dirs: string[] = [];

function dataDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'tessera-cli-'));
  dirs.push(dir);
  return dir;
}

async function tessera(args: string[], dir: string): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(path.join(serverDir, 'node_modules/.bin/tsx'), ['src/cli.ts', ...args], {
      cwd: serverDir,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', TESSERA_DATA_DIR: dir, TESSERA_MASTER_KEY: 'a'.repeat(64) },
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('pnpm tessera tenant create', () => {
  it('prints exactly {tenantId, slug, adminToken} as JSON, and refuses a duplicate slug', async () => {
    const dir = dataDir();
    const first = await tessera(['tenant', 'create', 'acme', '--json'], dir);
    expect(first.code).toBe(0);
    const out = JSON.parse(first.stdout);
    expect(Object.keys(out).sort()).toEqual(['adminToken', 'slug', 'tenantId']);
    expect(out.slug).toBe('acme');
    expect(out.adminToken).toMatch(/^tsr_/);
    const again = await tessera(['tenant', 'create', 'acme', '--json'], dir);
    expect(again.code).toBe(1);
    expect(again.stdout).toBe('');
    expect(again.stderr).toContain('already exists');
    const bad = await tessera(['tenant', 'create', 'Not A Slug', '--json'], dir);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('slug');
  }, 180_000);

  it('answers an unknown option or a missing value with the usage and exit code 2, creating nothing', async () => {
    const dir = dataDir();
    for (const [args, message] of [
      [['tenant', 'create', 'acme', '--bogus'], "Unknown option '--bogus'"],
      [['tenant', 'create', 'acme', '--name'], "Option '--name <value>' argument missing"],
    ] as const) {
      const out = await tessera([...args], dir);
      expect(out.code, out.stderr).toBe(2);
      expect(out.stdout).toBe('');
      expect(out.stderr).toContain(message);
      expect(out.stderr).toContain('Usage: pnpm tessera <command>');
    }
    expect(readdirSync(dir)).toEqual([]);
  });

  describe('while the server holds the data dir', () => {
    let server: Instance;
    afterAll(() => (server ? stopInstance(server) : undefined));

    it('goes through the running server, whose API then accepts the new token', async () => {
      const dir = dataDir();
      server = await startInstance({ TESSERA_DATA_DIR: dir, PORT: '0', HOST: '127.0.0.1', TESSERA_DEMO: '0', TESSERA_MASTER_KEY: 'a'.repeat(64), NODE_ENV: 'test' });
      const created = await tessera(['tenant', 'create', 'live-co', '--json'], dir);
      expect(created.code, created.stderr).toBe(0);
      const { adminToken, tenantId } = JSON.parse(created.stdout);
      const res = await fetch(`${server.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${adminToken}` },
        body: JSON.stringify({ query: '{ viewer { tenantId role } }' }),
      });
      expect((await res.json()).data.viewer).toEqual({ tenantId, role: 'OWNER' });
    });
  });
});
