import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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

/** Runs the CLI; `stdin` is written to its standard input (closed at once when not given). */
async function tessera(args: string[], dir: string, stdin = ''): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const running = run(path.join(serverDir, 'node_modules/.bin/tsx'), ['src/cli.ts', ...args], {
      cwd: serverDir,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', TESSERA_DATA_DIR: dir, TESSERA_MASTER_KEY: 'a'.repeat(64) },
    });
    running.child.stdin?.end(stdin);
    const { stdout, stderr } = await running;
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
    let dir: string;
    beforeAll(async () => {
      dir = dataDir();
      server = await startInstance({ TESSERA_DATA_DIR: dir, PORT: '0', HOST: '127.0.0.1', TESSERA_DEMO: '0', TESSERA_MASTER_KEY: 'a'.repeat(64), NODE_ENV: 'test' });
    }, 180_000);
    afterAll(() => (server ? stopInstance(server) : undefined));

    const gql = async (query: string, variables: Record<string, unknown>, headers: Record<string, string> = {}) => {
      const res = await fetch(`${server.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ query, variables }) });
      return { body: (await res.json()) as { data: any; errors?: unknown }, cookie: res.headers.get('set-cookie')?.split(';')[0] ?? null };
    };
    const signIn = (tenant: string, email: string, password: string) =>
      gql(`mutation($input: SignInInput!) { signIn(input: $input) { __typename } }`, { input: { tenant, email, password } });
    const viewer = async (cookie: string) => (await gql('{ viewer { role } }', {}, { cookie })).body.data.viewer;

    it('goes through the running server, whose API then accepts the new token', async () => {
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

    it('member create / reset-password take the password from standard input; set-role; the last owner stays', async () => {
      expect((await tessera(['tenant', 'create', 'locked-out', '--json'], dir)).code).toBe(0);
      const member = ['--tenant', 'locked-out', '--email', 'sole@owner.example', '--json'];
      const created = await tessera(['member', 'create', ...member, '--role', 'OWNER', '--password-stdin'], dir, 'first good password\n');
      expect(created.code, created.stderr).toBe(0);
      expect(JSON.parse(created.stdout)).toMatchObject({ email: 'sole@owner.example', role: 'OWNER' });
      expect(created.stdout).not.toContain('first good password');
      const first = await signIn('locked-out', 'sole@owner.example', 'first good password');
      expect(first.body.data.signIn.__typename).toBe('SignInSuccess');

      // The sole owner forgot it: the operator sets a new one; the old password and sessions stop working.
      const reset = await tessera(['member', 'reset-password', ...member, '--password-stdin'], dir, 'second good password\n');
      expect(reset.code, reset.stderr).toBe(0);
      expect(reset.stdout).not.toContain('second good password');
      expect(await viewer(first.cookie!)).toBeNull();
      expect((await signIn('locked-out', 'sole@owner.example', 'first good password')).body.data.signIn.__typename).toBe('ValidationError');
      const second = await signIn('locked-out', 'sole@owner.example', 'second good password');
      expect(await viewer(second.cookie!)).toEqual({ role: 'OWNER' });
      // Without a password given, one is generated and printed once.
      const generated = await tessera(['member', 'reset-password', ...member], dir);
      expect(generated.code, generated.stderr).toBe(0);
      const { password } = JSON.parse(generated.stdout);
      expect(password).toMatch(/^\S{12,}$/);
      expect((await signIn('locked-out', 'sole@owner.example', password)).body.data.signIn.__typename).toBe('SignInSuccess');

      const demoted = await tessera(['member', 'set-role', ...member, '--role', 'ADMIN'], dir);
      expect(demoted.code).toBe(1);
      expect(demoted.stderr).toContain('last owner');
      const helper = await tessera(['member', 'create', '--tenant', 'locked-out', '--email', 'helper@owner.example', '--role', 'SUPPORT', '--password', 'discouraged but works', '--json'], dir);
      expect(helper.code, helper.stderr).toBe(0);
      const promoted = await tessera(['member', 'set-role', '--tenant', 'locked-out', '--email', 'helper@owner.example', '--role', 'owner', '--json'], dir);
      expect(promoted.code, promoted.stderr).toBe(0);
      expect(JSON.parse(promoted.stdout)).toMatchObject({ email: 'helper@owner.example', role: 'OWNER' });
      const helperSession = await signIn('locked-out', 'helper@owner.example', 'discouraged but works');
      expect(await viewer(helperSession.cookie!)).toEqual({ role: 'OWNER' });

      for (const [args, message] of [
        [['member', 'reset-password', ...member, '--password', 'x', '--password-stdin'], 'not both'],
        [['member', 'reset-password', ...member, '--password-stdin'], 'no password'],
        [['member', 'set-role', ...member], '--role'],
      ] as const) {
        const out = await tessera([...args], dir, '');
        expect(out.code, out.stderr).toBe(2);
        expect(out.stderr).toContain(message);
      }
      const unknown = await tessera(['member', 'reset-password', '--tenant', 'locked-out', '--email', 'nobody@owner.example'], dir);
      expect(unknown.code).toBe(1);
      expect(unknown.stderr).toContain('not found');
    }, 360_000);
  });
});
