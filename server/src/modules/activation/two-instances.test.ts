import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Instance, startInstance, stopInstance } from '../../../test/processes.ts';
import { freshPostgres, startTestServer, testDatabaseUrl, type TestServer } from '../../../test/harness.ts';
import { ACTIVATE, issue, license as issueLicense } from './fixtures.ts';

/**
 * Activation invariants across processes: two real server instances (`src/main.ts`) on one fresh
 * PostgreSQL database, 200 activations split between them against a cap of 100, and devices activating
 * with two licenses of one product through both at once.
 */

describe.skipIf(!testDatabaseUrl)('two server instances on one PostgreSQL', () => {
  let fresh: Awaited<ReturnType<typeof freshPostgres>>;
  let setup: TestServer;
  let dataDir: string;
  const instances: Instance[] = [];

  beforeAll(async () => {
    fresh = await freshPostgres(testDatabaseUrl!);
    setup = await startTestServer({ databaseUrl: fresh.url });
    dataDir = mkdtempSync(path.join(tmpdir(), 'tessera-two-'));
    const env = {
      DATABASE_URL: fresh.url,
      PORT: '0',
      HOST: '127.0.0.1',
      TESSERA_DATA_DIR: dataDir,
      TESSERA_DEMO: '0',
      TESSERA_MASTER_KEY: randomBytes(32).toString('base64'),
      NODE_ENV: 'test',
      // Unexpected errors reach the log (and a failure's message below).
      LOG_LEVEL: 'error',
    };
    instances.push(...(await Promise.all([startInstance(env), startInstance(env)])));
  }, 180_000);

  afterAll(async () => {
    await Promise.all(instances.map(stopInstance));
    await setup?.close();
    await fresh?.drop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  }, 60_000);

  const activate = async (via: number, input: Record<string, unknown>) => {
    const r = await fetch(`${instances[via]!.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: ACTIVATE, variables: { input } }),
    });
    const body = (await r.json()) as { data: { activate: { __typename: string; code?: string; token?: string } }; errors?: unknown };
    if (body.errors) throw new Error(`${JSON.stringify(body.errors)}\n${instances.map((x) => x.output()).join('\n')}`);
    return { via, ...body.data.activate };
  };

  it('a device activating with two licenses of one product through both instances at once ends live on one', async () => {
    const { token } = await setup.tenant();
    const a = await issue(setup, token, { maxActivations: 100 });
    const b = await issueLicense(setup, token, a.editionId);
    const devices = Array.from({ length: 50 }, (_, i) => `both-${i}`);
    // Each device's two calls go one to each instance, and every call is in flight at once.
    const results = await Promise.all(devices.flatMap((fingerprint, i) => [activate(i % 2, { key: a.key, fingerprint }), activate(1 - (i % 2), { key: b.key, fingerprint })]));
    expect(results.filter((r) => r.__typename !== 'ActivateSuccess')).toEqual([]);
    const live = await setup.db.prisma.activation.findMany({ where: { licenseId: { in: [a.id, b.id] }, status: 'ACTIVE' } });
    expect(live.map((x) => x.fingerprint).sort()).toEqual([...devices].sort());
    for (const l of [a, b]) {
      const { activationsUsed } = await setup.db.prisma.license.findUniqueOrThrow({ where: { id: l.id } });
      expect(activationsUsed).toBe(live.filter((x) => x.licenseId === l.id).length);
    }
  }, 120_000);

  it('200 concurrent activations split across both against a cap of 100: exactly 100 succeed', async () => {
    const { token, slug } = await setup.tenant();
    const l = await issue(setup, token, { maxActivations: 100 });
    const results = await Promise.all(Array.from({ length: 200 }, (_, i) => activate(i % 2, { key: l.key, fingerprint: `two-${i}` })));
    const ok = results.filter((r) => r.__typename === 'ActivateSuccess');
    expect(ok).toHaveLength(100);
    expect(results.filter((r) => r.code === 'ACTIVATION_LIMIT_REACHED')).toHaveLength(100);
    // Both instances raced for the same slots (each answered its half; which one won them varies:
    // an instance takes its concurrent requests in batches, so one may well win every slot).
    expect(results.filter((r) => r.via === 0)).toHaveLength(100);
    expect(results.filter((r) => r.via === 1)).toHaveLength(100);
    const license = await setup.db.prisma.license.findUniqueOrThrow({ where: { id: l.id } });
    expect(license.activationsUsed).toBe(100);
    expect(await setup.db.prisma.activation.count({ where: { licenseId: l.id, status: 'ACTIVE' } })).toBe(100);
    // One signing key for the tenant, whichever instance signed first; tokens from both verify.
    expect(await setup.db.prisma.signingKey.count({ where: { tenant: { slug } } })).toBe(1);
    const jwks = createRemoteJWKSet(new URL(`${instances[1]!.url}/.well-known/jwks.json?tenant=${slug}`));
    const signedBy = [...new Set(ok.map((x) => x.via))].map((via) => ok.find((x) => x.via === via)!);
    for (const r of signedBy) {
      const { payload } = await jwtVerify(r.token!, jwks, { typ: 'tessera-activation+jwt', issuer: slug });
      expect(payload.sub).toBe(l.id);
    }
  }, 120_000);
});
