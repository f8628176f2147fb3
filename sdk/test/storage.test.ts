import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { JSONWebKeySet } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ok, startTestServer, type TestServer } from '../../server/test/harness.ts';
import { createClient, type TesseraClient } from '../src/client.ts';
import { TesseraError } from '../src/errors.ts';
import { fileStorage, type LicenseState, memoryStorage, type Storage } from '../src/storage.ts';

// The state file under concurrent use, and when it is unreadable: calls of one client (or of two
// clients on one file) at once must neither fail nor lose each other's changes, and a damaged file
// must not lock the machine out of its license.

let s: TestServer;
let base: string;
let slug: string;
let token: string;
let jwks: JSONWebKeySet;
let editionId: string;

const tmpFile = () => path.join(mkdtempSync(path.join(os.tmpdir(), 'tessera-state-')), 'state.json');

function client(storage: Storage, options: Partial<Parameters<typeof createClient>[0]> = {}): TesseraClient {
  return createClient({
    endpoint: `${base}/graphql`,
    tenant: slug,
    publicKeys: jwks,
    storage,
    device: { fingerprint: 'storage-device-1', components: [{ kind: 'MACHINE_ID', value: 'm1' }] },
    ...options,
  });
}

async function newLicense(): Promise<{ id: string; key: string }> {
  const r = ok(await s.gql(`mutation($input: CreateLicenseInput!) { createLicense(input: $input) { ... on CreateLicensePayload { license { id key } } } }`, { input: { editionId } }, { token }));
  return r.createLicense.license;
}

/** The state of this machine with a license file installed whose license meters "cycles" (offline usage counts only then). */
async function meteredState(): Promise<LicenseState> {
  const lic = ok(
    await s.gql(`mutation($input: CreateLicenseInput!) { createLicense(input: $input) { ... on CreateLicensePayload { license { id key } } } }`, {
      input: { editionId, deploymentMode: 'OFFLINE', meters: [{ meter: 'cycles', quota: 1000, period: 'NONE' }] },
    }, { token }),
  ).createLicense.license;
  const m = client(memoryStorage());
  const request = await m.createActivationRequest(lic.key);
  const issued = ok(
    await s.gql(`mutation($input: IssueOfflineLicenseInput!) { issueOfflineLicense(input: $input) { __typename ... on OfflineLicensePayload { licenseFile } } }`, { input: { licenseId: lic.id, request } }, { token }),
  ).issueOfflineLicense;
  await m.installLicenseFile(issued.licenseFile);
  return m.state();
}

beforeAll(async () => {
  s = await startTestServer();
  await new Promise<void>((r) => s.app.server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(s.app.server.address() as AddressInfo).port}`;
  ({ slug, token } = await s.tenant());
  const productId = ok(await s.gql(`mutation { createProduct(input: { name: "CAD", code: "cad" }) { ... on Product { id } } }`, {}, { token })).createProduct.id;
  ok(await s.gql(`mutation($p: ID!) { createFeature(input: { productId: $p, code: "export", name: "Export" }) { __typename } }`, { p: productId }, { token }));
  ok(await s.gql(`mutation($p: ID!) { createMeter(input: { productId: $p, code: "cycles", name: "Cycles" }) { __typename } }`, { p: productId }, { token }));
  editionId = ok(
    await s.gql(`mutation($input: CreateEditionInput!) { createEdition(input: $input) { ... on Edition { id } } }`, {
      input: { productId, name: 'Pro', code: 'pro', licenseType: 'SUBSCRIPTION', validityDays: 30, maxActivations: 2, heartbeatSeconds: 60, features: ['export'] },
    }, { token }),
  ).createEdition.id;
  jwks = (await (await fetch(`${base}/.well-known/jwks.json?tenant=${slug}`)).json()) as JSONWebKeySet;
});
afterAll(() => s.close());

describe('concurrent use of one state file', () => {
  it('takes 20 saves at once; the file is one of them, whole', async () => {
    const file = tmpFile();
    const storage = fileStorage(file);
    const results = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => storage.save({ key: `k${i}` })));
    expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
    expect(JSON.parse(readFileSync(file, 'utf8')).key).toMatch(/^k\d+$/);
    expect(readdirSync(path.dirname(file))).toEqual(['state.json']);
  });

  it('loses no offline usage recorded at once, by one client or by two clients on the same file', async () => {
    const file = tmpFile();
    writeFileSync(file, JSON.stringify(await meteredState()));
    const a = client(fileStorage(file));
    const b = client(fileStorage(file));
    await Promise.all([...Array.from({ length: 10 }, () => a.recordOfflineUsage('cycles', 1)), ...Array.from({ length: 10 }, () => b.recordOfflineUsage('cycles', 2))]);
    expect((await a.state()).offlineUsage).toEqual({ cycles: 30 });
  });

  it('serialises the calls of a custom storage that has only load and save', async () => {
    let stored = await meteredState();
    const custom: Storage = {
      load: async () => structuredClone(stored),
      save: async (next) => {
        await new Promise((r) => setTimeout(r, 1));
        stored = structuredClone(next);
      },
    };
    const c = client(custom);
    await Promise.all(Array.from({ length: 5 }, () => c.recordOfflineUsage('cycles', 1)));
    expect(stored.offlineUsage).toEqual({ cycles: 5 });
  });

  it('validates and heartbeats at once against a real server without a storage error', async () => {
    const { key } = await newLicense();
    const c = client(fileStorage(tmpFile()));
    await c.activate(key);
    const failures: unknown[] = [];
    for (let i = 0; i < 10; i++) {
      const r = await Promise.allSettled([c.validate({ feature: 'export' }), c.heartbeat(), c.validate()]);
      for (const x of r) if (x.status === 'rejected') failures.push(x.reason);
    }
    expect(failures).toEqual([]);
    expect((await c.state()).token).toBeTruthy();
  });
});

describe('processes sharing one state file', () => {
  const writer = (file: string, count: number) =>
    new Promise<string>((resolve, reject) => {
      execFile(process.execPath, ['--import', 'tsx', path.join(import.meta.dirname, 'state-writer.ts'), file, String(count)], { cwd: import.meta.dirname }, (err, stdout, stderr) =>
        err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout.trim()),
      );
    });

  it('lose none of each other\'s updates', async () => {
    const file = tmpFile();
    expect(await Promise.all([writer(file, 150), writer(file, 150), writer(file, 150)])).toEqual(['done', 'done', 'done']);
    expect(JSON.parse(readFileSync(file, 'utf8')).offlineUsage).toEqual({ n: 450 });
    expect(readdirSync(path.dirname(file))).toEqual(['state.json']);
  });

  it('break the lock of a process that died holding it, and wait for a live holder', async () => {
    const file = tmpFile();
    const dead = await new Promise<number>((resolve) => {
      const child = execFile(process.execPath, ['-e', '']);
      child.on('exit', () => resolve(child.pid!));
    });
    writeFileSync(`${file}.lock`, `${dead} 0123456789ab\n`);
    expect(await writer(file, 3)).toBe('done');
    expect(JSON.parse(readFileSync(file, 'utf8')).offlineUsage).toEqual({ n: 3 });

    // Held by a live process (this one): the other waits until it is let go, then goes on.
    writeFileSync(`${file}.lock`, `${process.pid} 0123456789ab\n`);
    const waiting = writer(file, 1);
    // Time for the child to start and reach the lock (had it not waited, it would have written by then).
    await new Promise((r) => setTimeout(r, 2_000));
    expect(JSON.parse(readFileSync(file, 'utf8')).offlineUsage).toEqual({ n: 3 });
    unlinkSync(`${file}.lock`);
    expect(await waiting).toBe('done');
    expect(JSON.parse(readFileSync(file, 'utf8')).offlineUsage).toEqual({ n: 4 });
  });
});

describe('an unreadable state file', () => {
  it.each([
    ['empty', ''],
    ['truncated', '{"key": "LIC-'],
    ['null', 'null'],
    ['an array', '[]'],
  ])('is moved aside when %s, reads as not activated, and activate() writes a new one', async (_, content) => {
    const file = tmpFile();
    writeFileSync(file, content);
    const c = client(fileStorage(file));
    await expect(c.validate()).rejects.toMatchObject({ name: 'TesseraError', code: 'NOT_ACTIVATED' });
    const aside = readdirSync(path.dirname(file)).filter((f) => f.startsWith('state.json.corrupt-'));
    expect(aside).toHaveLength(1);
    expect(readFileSync(path.join(path.dirname(file), aside[0]!), 'utf8')).toBe(content);

    const { key } = await newLicense();
    writeFileSync(file, content);
    const a = await c.activate(key);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toMatchObject({ key, token: a.token });
    expect(await c.validate()).toMatchObject({ valid: true });
  });

  it('reports a state file that cannot be read or written as a TesseraError', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tessera-state-'));
    writeFileSync(path.join(dir, 'not-a-dir'), 'x');
    const storage = fileStorage(path.join(dir, 'not-a-dir', 'state.json'));
    const load = await storage.load().then(() => null, (e: unknown) => e);
    expect(load).toBeInstanceOf(TesseraError);
    expect(load).toMatchObject({ code: 'STORAGE_FAILED' });
    await expect(storage.save({ key: 'k' })).rejects.toMatchObject({ code: 'STORAGE_FAILED' });
    await expect(client(storage).recordOfflineUsage('cycles', 1)).rejects.toMatchObject({ code: 'STORAGE_FAILED' });
  });
});
