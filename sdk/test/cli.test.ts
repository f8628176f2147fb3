import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { JSONWebKeySet } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ok, startTestServer, type TestServer } from '../../server/test/harness.ts';
import { createClient } from '../src/client.ts';
import { defaultStatePath, fileStorage } from '../src/storage.ts';

// tessera-client as customers run it: a separate process, on this machine's real fingerprint.

let s: TestServer;
let base: string;
let slug: string;
let token: string;
let editionId: string;
let dir: string;
let jwksFile: string;
let jwks: JSONWebKeySet;

function cli(...args: string[]) {
  return spawnSync(process.execPath, [path.join(import.meta.dirname, '../bin/tessera-client.mjs'), ...args], { encoding: 'utf8', timeout: 30_000 });
}

beforeAll(async () => {
  s = await startTestServer();
  await new Promise<void>((r) => s.app.server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(s.app.server.address() as AddressInfo).port}`;
  ({ slug, token } = await s.tenant());
  const productId = ok(await s.gql(`mutation { createProduct(input: { name: "CAD", code: "cad" }) { ... on Product { id } } }`, {}, { token })).createProduct.id;
  editionId = ok(
    await s.gql(`mutation($input: CreateEditionInput!) { createEdition(input: $input) { ... on Edition { id } } }`, {
      input: { productId, name: 'Pro', code: 'pro', licenseType: 'SUBSCRIPTION', validityDays: 30, maxActivations: 2 },
    }, { token }),
  ).createEdition.id;
  jwks = (await (await fetch(`${base}/.well-known/jwks.json?tenant=${slug}`)).json()) as JSONWebKeySet;
  dir = mkdtempSync(path.join(os.tmpdir(), 'tessera-cli-'));
  jwksFile = path.join(dir, 'jwks.json');
  writeFileSync(jwksFile, JSON.stringify(jwks));
});
afterAll(() => s.close());

describe('status', () => {
  it('verifies a stored activation token: garbage is not valid (exit 1)', () => {
    const state = path.join(dir, 'garbage.json');
    writeFileSync(state, JSON.stringify({ key: 'LIC-X', token: 'garbage.not.a-token', revision: 1, lastOnlineAt: new Date().toISOString() }));
    const r = cli('status', '--tenant', slug, '--jwks', jwksFile, '--state', state, '--json');
    expect(r.status).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ installed: true, valid: false, code: 'INVALID_SIGNATURE' });
  });

  it('reports a real activation token of this machine valid (exit 0), and not once the server refused it', async () => {
    const lic = ok(await s.gql(`mutation($input: CreateLicenseInput!) { createLicense(input: $input) { ... on CreateLicensePayload { license { id key } } } }`, { input: { editionId } }, { token })).createLicense.license;
    const state = path.join(dir, 'real.json');
    const c = createClient({ endpoint: `${base}/graphql`, tenant: slug, publicKeys: jwks, storage: fileStorage(state) });
    await c.activate(lic.key);
    const good = cli('status', '--tenant', slug, '--jwks', jwksFile, '--state', state, '--json');
    expect(good.status).toBe(0);
    expect(JSON.parse(good.stdout)).toMatchObject({ installed: true, valid: true });
    expect(cli('status', '--tenant', slug, '--state', state, '--json').status).toBe(1); // nothing to verify it with

    ok(await s.gql(`mutation($id: ID!) { revokeLicense(input: { licenseId: $id }) { __typename } }`, { id: lic.id }, { token }));
    expect(await c.validate()).toMatchObject({ valid: false, code: 'LICENSE_REVOKED' });
    const revoked = cli('status', '--tenant', slug, '--jwks', jwksFile, '--state', state, '--json');
    expect(revoked.status).toBe(1);
    expect(JSON.parse(revoked.stdout)).toMatchObject({ valid: false, code: 'LICENSE_REVOKED' });
  });

  it('says what the app says of a token past the grace period since the last contact: not valid', async () => {
    const lic = ok(await s.gql(`mutation($input: CreateLicenseInput!) { createLicense(input: $input) { ... on CreateLicensePayload { license { id key } } } }`, { input: { editionId } }, { token })).createLicense.license;
    const state = path.join(dir, 'silent.json');
    const c = createClient({ endpoint: `${base}/graphql`, tenant: slug, publicKeys: jwks, storage: fileStorage(state) });
    await c.activate(lic.key);
    expect(cli('status', '--tenant', slug, '--jwks', jwksFile, '--state', state, '--json').status).toBe(0);
    // The machine last reached the server 8 days ago (the SDK's grace period is 7): its token is signed
    // and unexpired, yet the app refuses it offline.
    const saved = JSON.parse(readFileSync(state, 'utf8'));
    writeFileSync(state, JSON.stringify({ ...saved, lastOnlineAt: new Date(Date.now() - 8 * 86_400_000).toISOString() }));
    expect(await c.validateOffline()).toMatchObject({ valid: false, code: 'GRACE_PERIOD_EXPIRED' });
    const r = cli('status', '--tenant', slug, '--jwks', jwksFile, '--state', state, '--json');
    expect(r.status).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ installed: true, valid: false, code: 'GRACE_PERIOD_EXPIRED' });
  });
});

describe('arguments', () => {
  it.each([
    ['an unknown option', ['status', '--tenant', 'acme', '--bogus']],
    ['an option without its value', ['status', '--json', '--tenant']],
    ['no command', ['--tenant', 'acme']],
    ['an unknown command', ['frobnicate', '--tenant', 'acme']],
    ['deactivate without --offline', ['deactivate', '--tenant', 'acme']],
    ['request without the license key', ['request', '--tenant', 'acme']],
    ['verify without a file', ['verify', '--tenant', 'acme']],
    ['install without a file', ['install', '--tenant', 'acme']],
    ['a file that does not exist', ['verify', path.join(os.tmpdir(), 'tessera-no-such-file.txt'), '--tenant', 'acme']],
    ['a --jwks file that does not exist', ['status', '--tenant', 'acme', '--jwks', path.join(os.tmpdir(), 'tessera-no-such-jwks.json')]],
    ['a --jwks file that is not JSON', ['status', '--tenant', 'acme', '--jwks', import.meta.filename]],
    ['a --jwks file that is no key set', ['status', '--tenant', 'acme', '--jwks', path.join(import.meta.dirname, '../package.json')]],
  ])('exit 2 with the usage line for %s, and a JSON error under --json', (_, args) => {
    const r = cli(...args, '--json');
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^usage: tessera-client/m);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(JSON.parse(r.stdout)).toMatchObject({ error: { code: 'USAGE' } });
  });

  it('keeps its state where the app does, in ~/.tessera, whatever --tenant says', () => {
    const home = mkdtempSync(path.join(os.tmpdir(), 'tessera-home-'));
    const run = (...args: string[]) => spawnSync(process.execPath, [path.join(import.meta.dirname, '../bin/tessera-client.mjs'), ...args], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, HOME: home } });
    const r = run('request', 'LIC-0000-000000000000-0000', '--tenant', '../escaped', '-o', path.join(home, 'request.txt'));
    expect(r.status, r.stderr).toBe(0);
    expect(existsSync(path.join(home, 'escaped.json'))).toBe(false);
    expect(existsSync(path.join(home, '.tessera', '___escaped.json'))).toBe(true);
  });

  it('deactivate --offline without an installed license fails typed (exit 1)', () => {
    const r = cli('deactivate', '--offline', '--tenant', 'acme', '--state', path.join(dir, 'none.json'), '--json');
    expect(r.status).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ error: { code: 'NOT_ACTIVATED' } });
  });
});

describe('offline deactivation', () => {
  it('an -o that cannot be written changes nothing (exit 2): the license stays until its deactivation file is saved', async () => {
    const lic = ok(
      await s.gql(`mutation($input: CreateLicenseInput!) { createLicense(input: $input) { ... on CreateLicensePayload { license { id key } } } }`, { input: { editionId, deploymentMode: 'OFFLINE' } }, { token }),
    ).createLicense.license;
    const state = path.join(dir, 'air-gapped.json');
    const request = path.join(dir, 'request.txt');
    expect(cli('request', lic.key, '--tenant', slug, '--state', state, '-o', request).status).toBe(0);
    const issued = ok(
      await s.gql(`mutation($input: IssueOfflineLicenseInput!) { issueOfflineLicense(input: $input) { __typename ... on OfflineLicensePayload { licenseFile } } }`, { input: { licenseId: lic.id, request: readFileSync(request, 'utf8') } }, { token }),
    ).issueOfflineLicense;
    const licenseFile = path.join(dir, 'license.txt');
    writeFileSync(licenseFile, issued.licenseFile);
    expect(cli('install', licenseFile, '--tenant', slug, '--jwks', jwksFile, '--state', state).status).toBe(0);

    const lost = cli('deactivate', '--offline', '--tenant', slug, '--jwks', jwksFile, '--state', state, '-o', path.join(dir, 'no-such-dir', 'deactivation.txt'), '--json');
    expect(lost.status).toBe(2);
    expect(JSON.parse(lost.stdout)).toMatchObject({ error: { code: 'USAGE' } });
    expect(JSON.parse(cli('status', '--tenant', slug, '--jwks', jwksFile, '--state', state, '--json').stdout)).toMatchObject({ installed: true, valid: true });

    const saved = path.join(dir, 'deactivation.txt');
    expect(cli('deactivate', '--offline', '--tenant', slug, '--jwks', jwksFile, '--state', state, '-o', saved, '--json').status).toBe(0);
    const imported = ok(await s.gql(`mutation($file: String!) { importOfflineDeactivation(input: { file: $file }) { __typename ... on ImportOfflineDeactivationPayload { imported } } }`, { file: readFileSync(saved, 'utf8') }, { token }));
    expect(imported.importOfflineDeactivation).toEqual({ __typename: 'ImportOfflineDeactivationPayload', imported: true });
  });
});
