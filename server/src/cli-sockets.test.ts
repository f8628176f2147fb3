import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshPostgres, testDatabaseUrl } from '../test/harness.ts';
import { type Instance, startInstance, stopInstance } from '../test/processes.ts';
import { execute, sleep, wsClient, type WsClient } from '../test/ws.ts';

/*
 * A member change made with the operator CLI (a process of its own) closes the member's open graphql-ws
 * sockets on a running server process (4403) within seconds, as the same change made through GraphQL
 * does, in each deployment README describes. The server's periodic re-check is set to 10 minutes here,
 * so it cannot be what closes them. On Redis, server and CLI use the channels main.ts uses (no prefix of
 * their own can be given to a server process): they are per tenant id, a fresh uuid, so runs sharing the
 * Redis never see each other's events (as in audit/two-processes.test.ts).
 */
const run = promisify(execFile);
const serverDir = path.resolve(import.meta.dirname, '..');
const redisUrl = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
/** Without Redis a running server's sweep (every 5 s) publishes the CLI's events; with it, the CLI does. */
const CLOSES_WITHIN_MS = 10_000;

const deployments = [
  { name: 'embedded (the CLI through the server socket)', postgres: false, redis: false },
  { name: 'PostgreSQL', postgres: true, redis: false },
  { name: 'PostgreSQL + Redis', postgres: true, redis: true },
] as const;

for (const deployment of deployments) {
  describe.skipIf(deployment.postgres && !testDatabaseUrl)(`CLI member changes on ${deployment.name}`, () => {
    let fresh: Awaited<ReturnType<typeof freshPostgres>> | undefined;
    let dataDir: string;
    let env: Record<string, string>;
    let server: Instance;
    const clients: WsClient[] = [];

    beforeAll(async () => {
      dataDir = mkdtempSync(path.join(tmpdir(), 'tessera-cli-sockets-'));
      if (deployment.postgres) fresh = await freshPostgres(testDatabaseUrl!);
      env = {
        TESSERA_DATA_DIR: dataDir,
        TESSERA_MASTER_KEY: randomBytes(32).toString('hex'),
        NODE_ENV: 'test',
        ...(fresh ? { DATABASE_URL: fresh.url } : {}),
        ...(deployment.redis ? { REDIS_URL: redisUrl } : {}),
      };
      server = await startInstance({ ...env, PORT: '0', HOST: '127.0.0.1', TESSERA_DEMO: '0', TESSERA_SOCKET_RECHECK_SECONDS: '600' });
    }, 180_000);

    afterAll(async () => {
      await Promise.all(clients.map((c) => c.dispose()));
      if (server) await stopInstance(server);
      await fresh?.drop();
      rmSync(dataDir, { recursive: true, force: true });
    }, 60_000);

    /** Runs the CLI as a process of its own with the server's settings; fails the test on a non-zero exit. */
    const tessera = async (args: string[], stdin = '') => {
      const running = run(path.join(serverDir, 'node_modules/.bin/tsx'), ['src/cli.ts', ...args], {
        cwd: serverDir,
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
      });
      running.child.stdin?.end(stdin);
      const { stdout, stderr } = await running;
      expect(stderr).toBe('');
      return stdout;
    };

    const gql = async (query: string, variables: Record<string, unknown>) => {
      const res = await fetch(`${server.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, variables }) });
      return { body: (await res.json()) as { data: any }, cookie: res.headers.get('set-cookie')?.split(';')[0] ?? null };
    };

    /** A console socket of the member (their session cookie), connected and answering. */
    const memberSocket = async (tenant: string, email: string, password: string, role: string) => {
      const signedIn = await gql(`mutation($input: SignInInput!) { signIn(input: $input) { __typename } }`, { input: { tenant, email, password } });
      expect(signedIn.body.data.signIn.__typename).toBe('SignInSuccess');
      const c = wsClient(`${server.url.replace('http', 'ws')}/graphql`, null, { cookie: signedIn.cookie!, origin: server.url });
      clients.push(c);
      expect((await execute(c.client, '{ viewer { role } }')).data).toEqual({ viewer: { role } });
      return c;
    };

    /** The close code if the socket closes within `ms`, else 'open'. */
    const closeCode = (c: WsClient, ms: number) => Promise.race([c.closed, sleep(ms).then(() => 'open' as const)]);

    it('set-role and reset-password close the member\'s open sockets (4403) within seconds, and only theirs', async () => {
      const slug = `cli-${randomBytes(4).toString('hex')}`;
      const { adminToken } = JSON.parse(await tessera(['tenant', 'create', slug, '--json']));
      const password = 'correct horse battery';
      for (const email of ['ada@example.com', 'bob@example.com']) {
        await tessera(['member', 'create', '--tenant', slug, '--email', email, '--role', 'ADMIN', '--password-stdin', '--json'], `${password}\n`);
      }
      const ada = await memberSocket(slug, 'ada@example.com', password, 'ADMIN');
      const bob = await memberSocket(slug, 'bob@example.com', password, 'ADMIN');
      const bystander = wsClient(`${server.url.replace('http', 'ws')}/graphql`, adminToken);
      clients.push(bystander);
      expect((await execute(bystander.client, '{ viewer { role } }')).data).toEqual({ viewer: { role: 'OWNER' } });

      await tessera(['member', 'set-role', '--tenant', slug, '--email', 'ada@example.com', '--role', 'SUPPORT', '--json']);
      expect(await closeCode(ada, CLOSES_WITHIN_MS), server.output()).toBe(4403);
      expect(await closeCode(bob, 0)).toBe('open');

      await tessera(['member', 'reset-password', '--tenant', slug, '--email', 'bob@example.com', '--password-stdin', '--json'], 'another good password\n');
      expect(await closeCode(bob, CLOSES_WITHIN_MS), server.output()).toBe(4403);
      expect(await closeCode(bystander, 0)).toBe('open');
      // The server also knows the new role: the member signs in again and gets it.
      await memberSocket(slug, 'ada@example.com', password, 'SUPPORT');
    }, 120_000);
  });
}
