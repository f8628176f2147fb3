import { decodeGlobalID } from '@pothos/plugin-relay';
import { AsyncLocalStorage } from 'node:async_hooks';
import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { createLocalJWKSet, createRemoteJWKSet, decodeProtectedHeader, type JSONWebKeySet, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ok, startTestServer, type TestServer } from '../../../test/harness.ts';
import {
  ACTIVATE,
  activateDevice,
  components,
  deactivateDevice,
  heartbeatDevice,
  issue,
  license as issueLicense,
  product,
  RELEASE,
  validate,
} from './fixtures.ts';
import { generateKey, parseKey } from '../licenses/keys.ts';
import { reclaimInactive } from './service.ts';

let s: TestServer;
let token: string;
let slug: string;
let tenantId: string;
beforeAll(async () => {
  s = await startTestServer();
  ({ token, slug, id: tenantId } = await s.tenant());
});
afterAll(() => s.close());

const rawId = (globalId: string) => decodeGlobalID(globalId).id;
const used = async (licenseId: string) => (await s.db.prisma.license.findUniqueOrThrow({ where: { id: licenseId } })).activationsUsed;
const events = (type: string, licenseId?: string) =>
  s.db.prisma.auditEvent.findMany({ where: { tenantId, type, ...(licenseId ? { licenseId } : {}) }, orderBy: { id: 'asc' } });

async function jwks(tenantSlug = slug): Promise<JSONWebKeySet> {
  const r = await s.fetch(`/.well-known/jwks.json?tenant=${tenantSlug}`);
  expect(r.status).toBe(200);
  return (await r.json()) as JSONWebKeySet;
}

const UPDATE_LICENSE = `mutation($input: UpdateLicenseInput!) { updateLicense(input: $input) { __typename ... on License { revision syncState } ... on Error { message } } }`;
const RENEW_LICENSE = `mutation($input: RenewLicenseInput!) { renewLicense(input: $input) { __typename ... on License { type expiresAt revision } ... on Error { message } } }`;
const LICENSE_ACTION = (name: string) => `mutation($input: LicenseIdInput!) { ${name}(input: $input) { __typename ... on Error { message } } }`;

describe('activate', () => {
  it('binds a device and returns a token that verifies against the published JWKS', async () => {
    const l = await issue(s, token, { maxActivations: 3, features: ['pro'] });
    const a = await activateDevice(s, {
      key: l.key,
      fingerprint: 'device-1',
      components: components('aa:bb', 'cpu-1'),
      client: { hostname: 'ws-1', platform: 'linux', osVersion: '6.1', appVersion: '1.2.3' },
    });
    expect(a.__typename).toBe('ActivateSuccess');
    expect(a).toMatchObject({ reused: false, goodwill: false, activation: { status: 'ACTIVE', fingerprint: 'device-1', appVersion: '1.2.3' } });
    expect(a.activation.license).toMatchObject({ activationsUsed: 1, maxActivations: 3, features: ['pro'], revision: 1 });

    expect(decodeProtectedHeader(a.token)).toMatchObject({ alg: 'EdDSA', typ: 'tessera-activation+jwt' });
    const { payload } = await jwtVerify(a.token, createLocalJWKSet(await jwks()), { typ: 'tessera-activation+jwt', issuer: slug });
    expect(payload).toMatchObject({ sub: l.id, activation: rawId(a.activation.id), fingerprint: 'device-1', revision: 1, features: ['pro'] });

    const [created] = await events('activation.created', l.id);
    expect(created).toMatchObject({ actorType: 'client', actorId: l.id, subjectId: rawId(a.activation.id) });
  });

  it('re-activating the same device returns the activation with reused: true and consumes nothing', async () => {
    const l = await issue(s, token, { maxActivations: 1 });
    const first = await activateDevice(s, { key: l.key, fingerprint: 'same' });
    const again = await activateDevice(s, { key: l.key, fingerprint: 'same', client: { appVersion: '2.0.0' } });
    expect(again).toMatchObject({ __typename: 'ActivateSuccess', reused: true, activation: { id: first.activation.id, appVersion: '2.0.0' } });
    expect(await used(l.id)).toBe(1);
    expect(await events('activation.reused', l.id)).toHaveLength(1);
  });

  it('rejects the activation beyond maxActivations with ACTIVATION_LIMIT_REACHED and a compliance event', async () => {
    const l = await issue(s, token, { maxActivations: 3 });
    for (let i = 0; i < 3; i++) expect((await activateDevice(s, { key: l.key, fingerprint: `d${i}` })).__typename).toBe('ActivateSuccess');
    const fourth = await activateDevice(s, { key: l.key, fingerprint: 'd3' });
    expect(fourth).toMatchObject({ __typename: 'LicensingError', code: 'ACTIVATION_LIMIT_REACHED' });
    expect(await used(l.id)).toBe(3);
    expect(await s.db.prisma.activation.count({ where: { licenseId: l.id } })).toBe(3);
    const denied = await events('compliance.activation_denied', l.id);
    expect(denied).toHaveLength(1);
    expect(denied[0]!.payload).toMatchObject({ code: 'ACTIVATION_LIMIT_REACHED' });
  });

  it('goodwill activations succeed with goodwill: true and raise compliance.goodwill_used; one more fails', async () => {
    const l = await issue(s, token, { maxActivations: 2, goodwillActivations: 1 });
    const results = [];
    for (let i = 0; i < 4; i++) results.push(await activateDevice(s, { key: l.key, fingerprint: `g${i}` }));
    expect(results.map((r) => r.goodwill ?? r.code)).toEqual([false, false, true, 'ACTIVATION_LIMIT_REACHED']);
    expect(await events('compliance.goodwill_used', l.id)).toHaveLength(1);
    expect(await used(l.id)).toBe(3);
  });

  it('200 concurrent activations against a cap of 100: exactly 100 succeed', async () => {
    const l = await issue(s, token, { maxActivations: 100 });
    const results = await Promise.all(Array.from({ length: 200 }, (_, i) => activateDevice(s, { key: l.key, fingerprint: `c-${i}` })));
    const byType = results.reduce<Record<string, number>>((acc, r) => {
      const k = r.__typename === 'ActivateSuccess' ? 'ok' : r.code;
      acc[k] = (acc[k] ?? 0) + 1;
      return acc;
    }, {});
    expect(byType).toEqual({ ok: 100, ACTIVATION_LIMIT_REACHED: 100 });
    expect(await used(l.id)).toBe(100);
    expect(await s.db.prisma.activation.count({ where: { licenseId: l.id, status: 'ACTIVE' } })).toBe(100);
  });

  it('the same device activating concurrently holds one activation and one slot', async () => {
    const l = await issue(s, token, { maxActivations: 5 });
    const results = await Promise.all(Array.from({ length: 10 }, () => activateDevice(s, { key: l.key, fingerprint: 'twin' })));
    expect(results.every((r) => r.__typename === 'ActivateSuccess')).toBe(true);
    expect(new Set(results.map((r) => r.activation.id)).size).toBe(1);
    expect(results.filter((r) => !r.reused)).toHaveLength(1);
    expect(await used(l.id)).toBe(1);
  });

  it('concurrent calls the one-statement path tries and calls it leaves to the rules each get their own answer', async () => {
    const capped = await issue(s, token, { maxActivations: 3 });
    const revoked = await issue(s, token, { maxActivations: 3 });
    await s.db.prisma.license.update({ where: { id: revoked.id }, data: { state: 'REVOKED' } });
    const versioned = await issue(s, token, { maxActivations: 10, allowedVersions: '>=2.0.0' });
    const held = await issue(s, token, { maxActivations: 10 });
    const first = await activateDevice(s, { key: held.key, fingerprint: 'h-1' });
    const unknownKey = generateKey('LIC');
    const calls = [
      ...Array.from({ length: 6 }, (_, i) => ({ expect: 'capped', input: { key: capped.key, fingerprint: `m-c-${i}` } })),
      ...Array.from({ length: 3 }, (_, i) => ({ expect: 'LICENSE_REVOKED', input: { key: revoked.key, fingerprint: `m-r-${i}` } })),
      ...Array.from({ length: 3 }, (_, i) => ({ expect: 'LICENSE_NOT_FOUND', input: { key: unknownKey, fingerprint: `m-u-${i}` } })),
      ...Array.from({ length: 3 }, (_, i) => ({ expect: 'new', input: { key: versioned.key, fingerprint: `m-v-${i}`, client: { appVersion: '2.1.0' } } })),
      ...Array.from({ length: 2 }, (_, i) => ({ expect: 'VERSION_NOT_ALLOWED', input: { key: versioned.key, fingerprint: `m-o-${i}`, client: { appVersion: '1.0.0' } } })),
      ...Array.from({ length: 3 }, () => ({ expect: 'reused', input: { key: held.key, fingerprint: 'h-1' } })),
      ...Array.from({ length: 2 }, (_, i) => ({ expect: 'new', input: { key: held.key, fingerprint: `m-h-${i}` } })),
    ];
    const results = await Promise.all(calls.map((c) => activateDevice(s, c.input)));
    const answer = (r: (typeof results)[number]) => (r.__typename !== 'ActivateSuccess' ? r.code : r.reused ? 'reused' : 'new');
    calls.forEach((c, i) => {
      if (c.expect === 'capped') expect(['new', 'ACTIVATION_LIMIT_REACHED']).toContain(answer(results[i]!));
      else expect(answer(results[i]!), `${c.input.fingerprint}`).toBe(c.expect);
    });
    const cappedAnswers = results.slice(0, 6).map(answer);
    expect(cappedAnswers.filter((a) => a === 'new')).toHaveLength(3);
    for (const [i, r] of results.entries()) {
      if (calls[i]!.expect === 'reused') expect(r.activation.id).toBe(first.activation.id);
    }
    expect(await used(capped.id)).toBe(3);
    expect(await used(revoked.id)).toBe(0);
    expect(await used(versioned.id)).toBe(3);
    expect(await used(held.id)).toBe(3);
    expect(await s.db.prisma.activation.count({ where: { licenseId: revoked.id } })).toBe(0);
    const denials = async (licenseId: string) => (await events('compliance.activation_denied', licenseId)).map((e) => (e.payload as { code: string }).code);
    expect(await denials(capped.id)).toEqual(['ACTIVATION_LIMIT_REACHED', 'ACTIVATION_LIMIT_REACHED', 'ACTIVATION_LIMIT_REACHED']);
    expect(await denials(versioned.id)).toEqual(['VERSION_NOT_ALLOWED', 'VERSION_NOT_ALLOWED']);
    expect(await events('activation.created', held.id)).toHaveLength(3);
  });

  it('token keys activate once each (TOKEN_ALREADY_USED), even under concurrency', async () => {
    const l = await issue(s, token, { maxActivations: 10 }, { tokenCount: 2 });
    const [t1, t2] = l.tokenKeys as [string, string];
    expect((await activateDevice(s, { key: t1, fingerprint: 'tk-a' })).__typename).toBe('ActivateSuccess');
    expect(await activateDevice(s, { key: t1, fingerprint: 'tk-b' })).toMatchObject({ code: 'TOKEN_ALREADY_USED' });
    expect(await activateDevice(s, { key: t1, fingerprint: 'tk-a' })).toMatchObject({ __typename: 'ActivateSuccess', reused: true });
    // The device keeps using its token key for the rest of its life.
    expect((await heartbeatDevice(s, { key: t1, fingerprint: 'tk-a' })).__typename).toBe('HeartbeatSuccess');
    expect(await validate(s, { key: t1, fingerprint: 'tk-a' })).toMatchObject({ valid: true });
    expect(await heartbeatDevice(s, { key: t1, fingerprint: 'tk-b' })).toMatchObject({ code: 'NOT_ACTIVATED' });

    const race = await Promise.all(Array.from({ length: 10 }, (_, i) => activateDevice(s, { key: t2, fingerprint: `tk-race-${i}` })));
    expect(race.filter((r) => r.__typename === 'ActivateSuccess')).toHaveLength(1);
    expect(race.filter((r) => r.code === 'TOKEN_ALREADY_USED')).toHaveLength(9);
    expect(await used(l.id)).toBe(2);
    const tokens = await s.db.prisma.tokenKey.findMany({ where: { licenseId: l.id } });
    expect(tokens.every((t) => t.usedAt && t.activationId)).toBe(true);
  });

  it('a token key answers for its own device only; an unused one reusing a live device is bound to it', async () => {
    const l = await issue(s, token, { maxActivations: 10, fingerprintMatch: 'MAJORITY' }, { tokenCount: 4 });
    const [t1, t2, t3, t4] = l.tokenKeys as [string, string, string, string];
    const a = await activateDevice(s, { key: t1, fingerprint: 'own-a', components: components('m-a', 'c-a', 'd-a') });
    expect(a.__typename).toBe('ActivateSuccess');
    const b = await activateDevice(s, { key: l.key, fingerprint: 'own-b' });
    expect(b.__typename).toBe('ActivateSuccess');

    // An unused token key acts on no device: it has activated none.
    expect(await heartbeatDevice(s, { key: t2, fingerprint: 'own-a' })).toMatchObject({ code: 'NOT_ACTIVATED' });
    expect(await deactivateDevice(s, { key: t2, fingerprint: 'own-a' })).toMatchObject({ code: 'NOT_ACTIVATED' });
    expect(await validate(s, { key: t2, fingerprint: 'own-a' })).toMatchObject({ valid: false, code: 'NOT_ACTIVATED' });
    // A used one acts on its own device, not on the license's others.
    expect(await heartbeatDevice(s, { key: t1, fingerprint: 'own-b' })).toMatchObject({ code: 'NOT_ACTIVATED' });
    expect(await deactivateDevice(s, { key: t1, fingerprint: 'own-b' })).toMatchObject({ code: 'NOT_ACTIVATED' });
    expect(await validate(s, { key: t1, fingerprint: 'own-b' })).toMatchObject({ valid: false, code: 'NOT_ACTIVATED' });
    expect(await activateDevice(s, { key: t1, fingerprint: 'own-b' })).toMatchObject({ code: 'TOKEN_ALREADY_USED' });
    // Fuzzy matching: its own device with a changed component is still its device; another key's device
    // whose components it presents is not.
    expect(await activateDevice(s, { key: t1, fingerprint: 'own-a2', components: components('m-a', 'c-a', 'x') })).toMatchObject({ __typename: 'ActivateSuccess', reused: true });
    const c = await activateDevice(s, { key: t3, fingerprint: 'own-c', components: components('m-c', 'c-c', 'd-c') });
    expect(await activateDevice(s, { key: t1, fingerprint: 'own-c2', components: components('m-c', 'c-c', 'y') })).toMatchObject({ code: 'TOKEN_ALREADY_USED' });
    expect(await s.db.prisma.activation.findUniqueOrThrow({ where: { id: rawId(c.activation.id) } })).toMatchObject({ fingerprint: 'own-c', status: 'ACTIVE' });
    // The license key (the customer's) answers for every device.
    expect((await heartbeatDevice(s, { key: l.key, fingerprint: 'own-a2' })).__typename).toBe('HeartbeatSuccess');
    expect(await used(l.id)).toBe(3);

    // An unused token key entered on a live device: the device is reused (no slot taken) and answers to it from now on.
    const bound = await activateDevice(s, { key: t4, fingerprint: 'own-b' });
    expect(bound).toMatchObject({ __typename: 'ActivateSuccess', reused: true, activation: { id: b.activation.id } });
    expect(await used(l.id)).toBe(3);
    expect((await heartbeatDevice(s, { key: t4, fingerprint: 'own-b' })).__typename).toBe('HeartbeatSuccess');
    const t4row = (await s.db.prisma.tokenKey.findMany({ where: { licenseId: l.id, activationId: rawId(b.activation.id) } }));
    expect(t4row).toHaveLength(1);
    expect(t4row[0]!.usedAt).not.toBeNull();
    expect(await activateDevice(s, { key: t4, fingerprint: 'own-d' })).toMatchObject({ code: 'TOKEN_ALREADY_USED' });
    // Its own device released, a token key is spent: it frees nothing else and activates nothing new.
    expect(await deactivateDevice(s, { key: t1, fingerprint: 'own-a2' })).toMatchObject({ __typename: 'DeactivateSuccess', activation: { id: a.activation.id } });
    expect(await heartbeatDevice(s, { key: t1, fingerprint: 'own-a2' })).toMatchObject({ code: 'ACTIVATION_RELEASED' });
    expect(await activateDevice(s, { key: t1, fingerprint: 'own-e' })).toMatchObject({ code: 'TOKEN_ALREADY_USED' });
    expect(await used(l.id)).toBe(2);
  });

  it('many activations at once with one unused token key on a live device: it is bound once, no slot taken', async () => {
    const l = await issue(s, token, { maxActivations: 3 }, { tokenCount: 1 });
    const [t] = l.tokenKeys as [string];
    const live = await activateDevice(s, { key: l.key, fingerprint: 'bind-race' });
    const race = await Promise.all(Array.from({ length: 10 }, () => activateDevice(s, { key: t, fingerprint: 'bind-race' })));
    expect(race.map((r) => r.__typename)).toEqual(Array(10).fill('ActivateSuccess'));
    expect(race.every((r) => r.reused && r.activation.id === live.activation.id)).toBe(true);
    expect(await used(l.id)).toBe(1);
    const rows = await s.db.prisma.tokenKey.findMany({ where: { licenseId: l.id } });
    expect(rows.map((r) => r.activationId)).toEqual([rawId(live.activation.id)]);
  });

  it('a device moving to another license of the same product frees its old activation', async () => {
    const l1 = await issue(s, token, { maxActivations: 2 });
    const l2 = await issueLicense(s, token, l1.editionId);
    const old = await activateDevice(s, { key: l1.key, fingerprint: 'mover' });
    await activateDevice(s, { key: l1.key, fingerprint: 'stays' });
    const moved = await activateDevice(s, { key: l2.key, fingerprint: 'mover' });
    expect(moved).toMatchObject({ __typename: 'ActivateSuccess', reused: false });
    expect(await s.db.prisma.activation.findUniqueOrThrow({ where: { id: rawId(old.activation.id) } })).toMatchObject({ status: 'RELEASED' });
    expect(await used(l1.id)).toBe(1);
    expect(await used(l2.id)).toBe(1);
    expect(await heartbeatDevice(s, { key: l1.key, fingerprint: 'mover' })).toMatchObject({ code: 'ACTIVATION_RELEASED' });
    const released = await events('activation.released', l1.id);
    expect(released.at(-1)!.payload).toMatchObject({ reason: 'moved', toLicenseId: l2.id });
  });

  it('an idempotency key returns the first result; with other parameters it is IDEMPOTENCY_KEY_REUSED', async () => {
    const l = await issue(s, token, { maxActivations: 5 });
    const input = { key: l.key, fingerprint: 'idem-1', idempotencyKey: 'req-1' };
    const first = await activateDevice(s, input);
    const retry = await activateDevice(s, input);
    expect(retry).toMatchObject({ __typename: 'ActivateSuccess', token: first.token, reused: false, activation: { id: first.activation.id } });
    expect(await activateDevice(s, { ...input, fingerprint: 'idem-2' })).toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED' });
    expect(await used(l.id)).toBe(1);

    const burst = await Promise.all(Array.from({ length: 8 }, () => activateDevice(s, { key: l.key, fingerprint: 'idem-3', idempotencyKey: 'req-2' })));
    expect(new Set(burst.map((r) => r.token)).size).toBe(1);
    expect(await used(l.id)).toBe(2);

    // A device already live, retried with one key many times at once: one answer, replayed; other parameters refused.
    const again = await Promise.all(Array.from({ length: 8 }, () => activateDevice(s, { key: l.key, fingerprint: 'idem-1', idempotencyKey: 'req-3' })));
    expect(again.map((r) => r.__typename)).toEqual(Array(8).fill('ActivateSuccess'));
    expect(new Set(again.map((r) => r.token)).size).toBe(1);
    const mixed = await Promise.all(Array.from({ length: 8 }, (_, i) => activateDevice(s, { key: l.key, fingerprint: i % 2 ? 'idem-1' : 'idem-3', idempotencyKey: 'req-4' })));
    expect(mixed.filter((r) => r.__typename === 'ActivateSuccess')).toHaveLength(4);
    expect(mixed.filter((r) => r.code === 'IDEMPOTENCY_KEY_REUSED')).toHaveLength(4);
    expect(await used(l.id)).toBe(2);

    // The components are a set: a retry listing them in another order is the same request.
    const listed = components('m-1', 'c-1', 'd-1');
    const firstOrder = await activateDevice(s, { key: l.key, fingerprint: 'idem-4', components: listed, idempotencyKey: 'req-5' });
    const reordered = await activateDevice(s, { key: l.key, fingerprint: 'idem-4', components: [...listed].reverse(), idempotencyKey: 'req-5' });
    expect(reordered).toMatchObject({ __typename: 'ActivateSuccess', token: firstOrder.token, reused: false });
    expect(await activateDevice(s, { key: l.key, fingerprint: 'idem-4', components: components('m-1', 'c-1', 'd-2'), idempotencyKey: 'req-5' })).toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED' });
    expect(await used(l.id)).toBe(3);
    // A record written before that (its hash over the components in the order given) still replays its own order.
    const legacy = createHash('sha256')
      .update(JSON.stringify({ key: parseKey(l.key)!.key, fingerprint: 'idem-4', components: [...listed].reverse(), client: { hostname: null, platform: null, osVersion: null, appVersion: null } }))
      .digest('hex');
    await s.db.prisma.idempotencyRecord.updateMany({ where: { scope: `activate:${l.id}`, key: 'req-5' }, data: { requestHash: legacy } });
    expect(await activateDevice(s, { key: l.key, fingerprint: 'idem-4', components: [...listed].reverse(), idempotencyKey: 'req-5' })).toMatchObject({ token: firstOrder.token });
    expect(await activateDevice(s, { key: l.key, fingerprint: 'idem-4', components: components('m-1', 'c-1', 'd-2'), idempotencyKey: 'req-5' })).toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED' });

    // Keys count per license: another license's client may choose the same one.
    const other = await issue(s, token, { maxActivations: 5 });
    expect(await activateDevice(s, { key: other.key, fingerprint: 'idem-1', idempotencyKey: 'req-1' })).toMatchObject({ __typename: 'ActivateSuccess', reused: false });
  });

  it('MAJORITY matching: one changed component is the same device; components are updated and audited', async () => {
    const l = await issue(s, token, { maxActivations: 5, fingerprintMatch: 'MAJORITY' });
    const first = await activateDevice(s, { key: l.key, fingerprint: 'fp-1', components: components('mac-1', 'cpu-1', 'disk-1') });
    const changed = await activateDevice(s, { key: l.key, fingerprint: 'fp-2', components: components('mac-1', 'cpu-1', 'disk-2') });
    expect(changed).toMatchObject({ __typename: 'ActivateSuccess', reused: true, activation: { id: first.activation.id, fingerprint: 'fp-2' } });
    expect(await used(l.id)).toBe(1);
    const row = await s.db.prisma.activation.findUniqueOrThrow({ where: { id: rawId(first.activation.id) } });
    expect(row.components).toEqual(components('mac-1', 'cpu-1', 'disk-2'));
    const [audit] = await events('device.components_changed', l.id);
    expect(audit!.payload).toMatchObject({ fromFingerprint: 'fp-1', toFingerprint: 'fp-2', added: [{ value: 'disk-2' }], removed: [{ value: 'disk-1' }] });
    // The device now heartbeats under its new fingerprint.
    expect((await heartbeatDevice(s, { key: l.key, fingerprint: 'fp-2' })).__typename).toBe('HeartbeatSuccess');

    // Two of three changed: a different device.
    const other = await activateDevice(s, { key: l.key, fingerprint: 'fp-3', components: components('mac-1', 'cpu-9', 'disk-9') });
    expect(other).toMatchObject({ reused: false });
  });

  it('ANY_TWO matching and EXACT matching', async () => {
    const any = await issue(s, token, { maxActivations: 5, fingerprintMatch: 'ANY_TWO' });
    await activateDevice(s, { key: any.key, fingerprint: 'a-1', components: components('m', 'c', 'd', 'h') });
    expect(await activateDevice(s, { key: any.key, fingerprint: 'a-2', components: components('m', 'c', 'x', 'y') })).toMatchObject({ reused: true });
    const exact = await issue(s, token, { maxActivations: 5 });
    await activateDevice(s, { key: exact.key, fingerprint: 'e-1', components: components('m', 'c', 'd') });
    expect(await activateDevice(s, { key: exact.key, fingerprint: 'e-2', components: components('m', 'c', 'x') })).toMatchObject({ reused: false });
    expect(await used(exact.id)).toBe(2);
  });
});

describe('rule order', () => {
  it('answers with stable codes in order: revoked, suspended, not yet valid, expired, deployment mode, version, limits', async () => {
    const revoked = await issue(s, token, { maxActivations: 1 });
    await s.db.prisma.license.update({ where: { id: revoked.id }, data: { state: 'REVOKED', expiresAt: new Date(Date.now() - 1000), type: 'SUBSCRIPTION' } });
    expect(await activateDevice(s, { key: revoked.key, fingerprint: 'r' })).toMatchObject({ code: 'LICENSE_REVOKED' });

    const suspended = await issue(s, token, { maxActivations: 1 });
    ok(await s.gql(LICENSE_ACTION('suspendLicense'), { input: { licenseId: suspended.globalId } }, { token }));
    await s.db.prisma.license.update({ where: { id: suspended.id }, data: { expiresAt: new Date(Date.now() - 1000), type: 'SUBSCRIPTION' } });
    expect(await activateDevice(s, { key: suspended.key, fingerprint: 'r' })).toMatchObject({ code: 'LICENSE_SUSPENDED' });

    const future = await issue(s, token, { maxActivations: 1 }, { startsAt: new Date(Date.now() + 86_400_000).toISOString() });
    expect(await activateDevice(s, { key: future.key, fingerprint: 'r' })).toMatchObject({ code: 'LICENSE_NOT_YET_VALID' });

    const expired = await issue(s, token, { maxActivations: 1, deploymentMode: 'OFFLINE', allowedVersions: '>=2.0.0' });
    await s.db.prisma.license.update({ where: { id: expired.id }, data: { expiresAt: new Date(Date.now() - 1000), type: 'SUBSCRIPTION' } });
    expect(await activateDevice(s, { key: expired.key, fingerprint: 'r', client: { appVersion: '1.0.0' } })).toMatchObject({ code: 'LICENSE_EXPIRED' });

    const offline = await issue(s, token, { maxActivations: 1, deploymentMode: 'OFFLINE', allowedVersions: '>=2.0.0' });
    expect(await activateDevice(s, { key: offline.key, fingerprint: 'r', client: { appVersion: '1.0.0' } })).toMatchObject({ code: 'ONLINE_ACTIVATION_NOT_ALLOWED' });

    const versioned = await issue(s, token, { maxActivations: 1, allowedVersions: '>=2.0.0 <3.0.0' });
    await activateDevice(s, { key: versioned.key, fingerprint: 'v-ok', client: { appVersion: '2.5.0' } });
    expect(await activateDevice(s, { key: versioned.key, fingerprint: 'v-old', client: { appVersion: '1.9.0' } })).toMatchObject({ code: 'VERSION_NOT_ALLOWED' });
    expect(await activateDevice(s, { key: versioned.key, fingerprint: 'v-new', client: { appVersion: '2.6.0' } })).toMatchObject({ code: 'ACTIVATION_LIMIT_REACHED' });
    const denied = await events('compliance.activation_denied', versioned.id);
    expect(denied.map((e) => (e.payload as { code: string }).code)).toEqual(['VERSION_NOT_ALLOWED', 'ACTIVATION_LIMIT_REACHED']);
  });
});

describe('heartbeat and sync', () => {
  it('records last seen, version and OS as a time series and returns nextHeartbeatBy', async () => {
    const l = await issue(s, token, { maxActivations: 2, heartbeatSeconds: 600 });
    const a = await activateDevice(s, { key: l.key, fingerprint: 'hb', client: { appVersion: '1.0.0', osVersion: 'win10' } });
    const before = Date.now();
    const h1 = await heartbeatDevice(s, { key: l.key, fingerprint: 'hb', revision: 1, client: { appVersion: '1.0.1', osVersion: 'win11' } });
    expect(h1).toMatchObject({ __typename: 'HeartbeatSuccess', updateAvailable: false, token: null, activation: { id: a.activation.id, appVersion: '1.0.1' } });
    expect(new Date(h1.nextHeartbeatBy).getTime()).toBeGreaterThanOrEqual(before + 600_000 - 1000);
    expect(new Date(h1.nextHeartbeatBy).getTime()).toBeLessThanOrEqual(Date.now() + 600_000 + 1000);
    expect(h1.activation.lastHeartbeatAt).not.toBeNull();
    await heartbeatDevice(s, { key: l.key, fingerprint: 'hb', revision: 1, client: { appVersion: '1.0.2' } });
    const samples = await s.db.prisma.heartbeatSample.findMany({ where: { activationId: rawId(a.activation.id) }, orderBy: { id: 'asc' } });
    expect(samples.map((x) => [x.appVersion, x.osVersion])).toEqual([
      ['1.0.1', 'win11'],
      ['1.0.2', 'win11'],
    ]);
    expect(await events('device.heartbeat', l.id)).toHaveLength(2);
    // Operators read the series through the license's devices.
    const DEVICES = `query($id: ID!) { node(id: $id) { ... on License { activationsUsed maxActivations activations { edges { node { fingerprint status appVersion lastHeartbeatAt heartbeats(last: 5) { appVersion osVersion } } } } } } }`;
    const devices = ok(await s.gql(DEVICES, { id: l.globalId }, { token })).node;
    expect(devices).toMatchObject({ activationsUsed: 1, maxActivations: 2 });
    expect(devices.activations.edges[0].node).toMatchObject({ fingerprint: 'hb', status: 'ACTIVE', appVersion: '1.0.2', heartbeats: [{ appVersion: '1.0.2' }, { appVersion: '1.0.1', osVersion: 'win11' }] });
    const anonymous = await s.gql(`mutation($input: HeartbeatInput!) { heartbeat(input: $input) { ... on HeartbeatSuccess { activation { heartbeats { at } } } } }`, { input: { key: l.key, fingerprint: 'hb' } });
    expect(anonymous.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect(await heartbeatDevice(s, { key: l.key, fingerprint: 'never-activated' })).toMatchObject({ code: 'NOT_ACTIVATED' });
  });

  it('concurrent heartbeats, several of one device: each success is recorded once; each refusal records nothing', async () => {
    // A version range makes every call leave the one-statement path; the plain license keeps it.
    const plain = await issue(s, token, { maxActivations: 3 });
    const ranged = await issue(s, token, { maxActivations: 3, allowedVersions: '>=1.0.0 <2.0.0' });
    for (const f of ['c1', 'c2']) {
      await activateDevice(s, { key: plain.key, fingerprint: f });
      await activateDevice(s, { key: ranged.key, fingerprint: f, client: { appVersion: '1.0.0' } });
    }
    const calls = Array.from({ length: 40 }, (_, i) => ({
      license: i % 2 ? ranged : plain,
      fingerprint: i % 4 < 2 ? 'c1' : 'c2',
      appVersion: i % 8 === 1 ? '2.0.0' : `1.0.${i}`,
    }));
    const answers = await Promise.all(calls.map((c) => heartbeatDevice(s, { key: c.license.key, fingerprint: c.fingerprint, client: { appVersion: c.appVersion } })));
    answers.forEach((a, i) => {
      expect(a.__typename).toBe(calls[i]!.license === ranged && calls[i]!.appVersion === '2.0.0' ? 'LicensingError' : 'HeartbeatSuccess');
      if (a.__typename === 'LicensingError') expect(a.code).toBe('VERSION_NOT_ALLOWED');
    });
    for (const l of [plain, ranged]) {
      const ok = calls.filter((c, i) => c.license === l && answers[i].__typename === 'HeartbeatSuccess');
      const samples = await s.db.prisma.heartbeatSample.findMany({ where: { licenseId: l.id } });
      expect(samples.map((x) => x.appVersion).sort()).toEqual(ok.map((c) => c.appVersion).sort());
      const beats = await events('device.heartbeat', l.id);
      expect(beats.map((e) => (e.payload as { appVersion: string }).appVersion).sort()).toEqual(ok.map((c) => c.appVersion).sort());
      expect(new Set(beats.map((e) => e.requestId)).size).toBe(ok.length);
    }
  });

  it('carries a license change to every device: updateAvailable + fresh token; PENDING_SYNC until all have it', async () => {
    const l = await issue(s, token, { maxActivations: 2, features: ['a', 'b'] });
    await activateDevice(s, { key: l.key, fingerprint: 's1' });
    await activateDevice(s, { key: l.key, fingerprint: 's2' });
    const updated = ok(await s.gql(UPDATE_LICENSE, { input: { licenseId: l.globalId, features: ['a', 'b'], maxActivations: 5 } }, { token }));
    expect(updated.updateLicense).toMatchObject({ revision: 2, syncState: 'PENDING_SYNC' });

    const h1 = await heartbeatDevice(s, { key: l.key, fingerprint: 's1', revision: 1 });
    expect(h1).toMatchObject({ updateAvailable: true, activation: { license: { revision: 2, maxActivations: 5 } } });
    const { payload } = await jwtVerify(h1.token, createLocalJWKSet(await jwks()), { typ: 'tessera-activation+jwt' });
    expect(payload).toMatchObject({ revision: 2, maxActivations: 5 });
    expect((await s.db.prisma.license.findUniqueOrThrow({ where: { id: l.id } })).syncState).toBe('PENDING_SYNC');

    const h2 = await heartbeatDevice(s, { key: l.key, fingerprint: 's2', revision: 1 });
    expect(h2.updateAvailable).toBe(true);
    expect((await s.db.prisma.license.findUniqueOrThrow({ where: { id: l.id } })).syncState).toBe('SYNCED');
    expect(await events('license.synced', l.id)).toHaveLength(1);
    // Up to date now.
    expect(await heartbeatDevice(s, { key: l.key, fingerprint: 's1', revision: 2 })).toMatchObject({ updateAvailable: false, token: null });
  });

  it('an expired trial answers LICENSE_EXPIRED; renewal extends it at once and the next heartbeat carries it', async () => {
    const l = await issue(s, token, { maxActivations: 1, validityDays: 14, licenseType: 'TRIAL' });
    await activateDevice(s, { key: l.key, fingerprint: 'trial' });
    await s.db.prisma.license.update({ where: { id: l.id }, data: { expiresAt: new Date(Date.now() - 60_000) } });
    expect(await heartbeatDevice(s, { key: l.key, fingerprint: 'trial', revision: 1 })).toMatchObject({ code: 'LICENSE_EXPIRED' });
    expect(await validate(s, { key: l.key, fingerprint: 'trial' })).toMatchObject({ valid: false, code: 'LICENSE_EXPIRED', license: { status: 'EXPIRED' } });

    const renewed = ok(await s.gql(RENEW_LICENSE, { input: { licenseId: l.globalId, extendDays: 365, licenseType: 'SUBSCRIPTION' } }, { token }));
    expect(renewed.renewLicense).toMatchObject({ type: 'SUBSCRIPTION', revision: 2 });
    const h = await heartbeatDevice(s, { key: l.key, fingerprint: 'trial', revision: 1 });
    expect(h).toMatchObject({ __typename: 'HeartbeatSuccess', updateAvailable: true, activation: { license: { type: 'SUBSCRIPTION', status: 'ACTIVE' } } });
    const { payload } = await jwtVerify(h.token, createLocalJWKSet(await jwks()));
    expect(payload.licenseType).toBe('SUBSCRIPTION');
    expect(new Date(payload.licenseExpiresAt as string).getTime()).toBeGreaterThan(Date.now() + 364 * 86_400_000);
    expect(payload.exp).toBe(Math.floor(new Date(payload.licenseExpiresAt as string).getTime() / 1000));
    expect(await validate(s, { key: l.key, fingerprint: 'trial' })).toMatchObject({ valid: true, code: null });
  });
});

describe('subscription grace period', () => {
  const GRACE_VALIDATE = `query($input: ValidateInput!) { validateLicense(input: $input) { valid code license { status inGracePeriod graceEndsAt } } }`;

  it('past expiry, the devices it has keep working until the grace ends; new devices are refused; renewal ends the grace', async () => {
    const l = await issue(s, token, { maxActivations: 3, validityDays: 30, licenseType: 'SUBSCRIPTION', gracePeriodSeconds: 7 * 86_400 });
    expect(await activateDevice(s, { key: l.key, fingerprint: 'g1' })).toMatchObject({ __typename: 'ActivateSuccess' });
    const expiredAt = new Date(Date.now() - 3_600_000);
    await s.db.prisma.license.update({ where: { id: l.id }, data: { expiresAt: expiredAt } });

    const v = ok(await s.gql(GRACE_VALIDATE, { input: { key: l.key, fingerprint: 'g1' } })).validateLicense;
    expect(v).toMatchObject({ valid: true, code: null, license: { status: 'EXPIRED', inGracePeriod: true } });
    expect(new Date(v.license.graceEndsAt).getTime()).toBe(expiredAt.getTime() + 7 * 86_400_000);
    expect(await heartbeatDevice(s, { key: l.key, fingerprint: 'g1', revision: 1 })).toMatchObject({ __typename: 'HeartbeatSuccess' });
    // The same device activating again is served; a new one is not.
    expect(await activateDevice(s, { key: l.key, fingerprint: 'g1' })).toMatchObject({ __typename: 'ActivateSuccess', reused: true });
    expect(await activateDevice(s, { key: l.key, fingerprint: 'g2' })).toMatchObject({ code: 'LICENSE_EXPIRED' });
    expect(await used(l.id)).toBe(1);
    // A token issued in the grace period lasts until the grace ends, and says so.
    const again = await activateDevice(s, { key: l.key, fingerprint: 'g1' });
    const { payload } = await jwtVerify(again.token, createLocalJWKSet(await jwks()));
    expect(payload.exp).toBe(Math.floor((expiredAt.getTime() + 7 * 86_400_000) / 1000));
    expect(payload.graceEndsAt).toBe(new Date(expiredAt.getTime() + 7 * 86_400_000).toISOString());

    // Once the grace has passed, everything answers LICENSE_EXPIRED.
    await s.db.prisma.license.update({ where: { id: l.id }, data: { expiresAt: new Date(Date.now() - 8 * 86_400_000) } });
    expect(await heartbeatDevice(s, { key: l.key, fingerprint: 'g1', revision: 1 })).toMatchObject({ code: 'LICENSE_EXPIRED' });
    expect(ok(await s.gql(GRACE_VALIDATE, { input: { key: l.key, fingerprint: 'g1' } })).validateLicense).toMatchObject({
      valid: false,
      code: 'LICENSE_EXPIRED',
      license: { inGracePeriod: false },
    });

    // Renewal: active again, out of grace.
    ok(await s.gql(RENEW_LICENSE, { input: { licenseId: l.globalId, extendDays: 365 } }, { token }));
    expect(ok(await s.gql(GRACE_VALIDATE, { input: { key: l.key, fingerprint: 'g1' } })).validateLicense).toMatchObject({
      valid: true,
      license: { status: 'ACTIVE', inGracePeriod: false },
    });
  });

  it('in the grace period a device recognised by its components is one it has', async () => {
    const l = await issue(s, token, { maxActivations: 3, validityDays: 30, licenseType: 'SUBSCRIPTION', gracePeriodSeconds: 86_400, fingerprintMatch: 'MAJORITY' });
    await activateDevice(s, { key: l.key, fingerprint: 'gm-1', components: components('m', 'c', 'd') });
    await s.db.prisma.license.update({ where: { id: l.id }, data: { expiresAt: new Date(Date.now() - 60_000) } });
    const changed = await activateDevice(s, { key: l.key, fingerprint: 'gm-2', components: components('m', 'c', 'x') });
    expect(changed).toMatchObject({ __typename: 'ActivateSuccess', reused: true, activation: { fingerprint: 'gm-2' } });
    expect(await activateDevice(s, { key: l.key, fingerprint: 'gm-3', components: components('n', 'o', 'p') })).toMatchObject({ code: 'LICENSE_EXPIRED' });
    expect(await used(l.id)).toBe(1);
  });

  it('is for subscriptions only, and bounded: bad terms are refused and change nothing', async () => {
    const productId = await product(s, token);
    const bad = async (terms: Record<string, unknown>) =>
      ok(
        await s.gql(
          `mutation($input: CreateEditionInput!) { createEdition(input: $input) { __typename ... on ValidationError { fields { path message } } } }`,
          { input: { productId, name: 'G', code: `g-${Math.random().toString(36).slice(2, 8)}`, ...terms } },
          { token },
        ),
      ).createEdition;
    expect(await bad({ licenseType: 'PERPETUAL', gracePeriodSeconds: 3600 })).toMatchObject({ __typename: 'ValidationError', fields: [{ path: 'gracePeriodSeconds' }] });
    expect(await bad({ licenseType: 'SUBSCRIPTION', validityDays: 30, gracePeriodSeconds: -1 })).toMatchObject({ __typename: 'ValidationError' });
    expect(await bad({ licenseType: 'SUBSCRIPTION', validityDays: 30, gracePeriodSeconds: 400 * 86_400 })).toMatchObject({ __typename: 'ValidationError' });
    expect(await s.db.prisma.edition.count({ where: { productId: String(decodeGlobalID(productId).id), name: 'G' } })).toBe(0);
  });
});

describe('release and reclamation', () => {
  it('deactivate frees the slot at once; a second deactivate is ACTIVATION_RELEASED', async () => {
    const l = await issue(s, token, { maxActivations: 1 });
    await activateDevice(s, { key: l.key, fingerprint: 'x1' });
    expect(await deactivateDevice(s, { key: l.key, fingerprint: 'x1' })).toMatchObject({ __typename: 'DeactivateSuccess', activation: { status: 'RELEASED' } });
    expect(await used(l.id)).toBe(0);
    expect(await deactivateDevice(s, { key: l.key, fingerprint: 'x1' })).toMatchObject({ code: 'ACTIVATION_RELEASED' });
    expect(await deactivateDevice(s, { key: l.key, fingerprint: 'nobody' })).toMatchObject({ code: 'NOT_ACTIVATED' });
    expect((await activateDevice(s, { key: l.key, fingerprint: 'x2' })).__typename).toBe('ActivateSuccess');
    // The released device may come back while a slot is free... there is none now.
    expect(await activateDevice(s, { key: l.key, fingerprint: 'x1' })).toMatchObject({ code: 'ACTIVATION_LIMIT_REACHED' });
    expect(await events('activation.released', l.id)).toHaveLength(1);
  });

  it('releaseActivation (admin) frees the seat; the device then gets ACTIVATION_RELEASED', async () => {
    const l = await issue(s, token, { maxActivations: 1 });
    const a = await activateDevice(s, { key: l.key, fingerprint: 'lost' });
    const r = ok(await s.gql(RELEASE, { input: { activationId: a.activation.id } }, { token }));
    expect(r.releaseActivation).toMatchObject({ __typename: 'Activation', status: 'RELEASED' });
    expect(await used(l.id)).toBe(0);
    expect(await heartbeatDevice(s, { key: l.key, fingerprint: 'lost' })).toMatchObject({ code: 'ACTIVATION_RELEASED' });
    expect(await validate(s, { key: l.key, fingerprint: 'lost' })).toMatchObject({ valid: false, code: 'ACTIVATION_RELEASED' });
    expect(ok(await s.gql(RELEASE, { input: { activationId: a.activation.id } }, { token })).releaseActivation.__typename).toBe('ConflictError');
    const anon = await s.gql(RELEASE, { input: { activationId: a.activation.id } });
    expect(anon.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    // Another tenant cannot see or release it.
    const other = await s.tenant();
    expect(ok(await s.gql(RELEASE, { input: { activationId: a.activation.id } }, { token: other.token })).releaseActivation.__typename).toBe('NotFoundError');
  });

  it('devices silent past inactivityReclaimSeconds become INACTIVE, free their seat, and hear ACTIVATION_RELEASED', async () => {
    const l = await issue(s, token, { maxActivations: 10, heartbeatSeconds: 60, inactivityReclaimSeconds: 120 });
    for (let i = 0; i < 6; i++) await activateDevice(s, { key: l.key, fingerprint: `idle-${i}` });
    const stale = new Date(Date.now() - 10 * 60_000);
    await s.db.prisma.activation.updateMany({ where: { licenseId: l.id, fingerprint: { in: ['idle-0', 'idle-1', 'idle-2', 'idle-3'] } }, data: { lastHeartbeatAt: stale } });
    await s.db.prisma.activation.updateMany({ where: { licenseId: l.id, fingerprint: 'idle-4' }, data: { activatedAt: stale } });

    // Several instances sweeping at once reclaim each device exactly once.
    const counts = await Promise.all([reclaimInactive(s.app.deps), reclaimInactive(s.app.deps), reclaimInactive(s.app.deps)]);
    // (The app's own periodic sweep may have taken some first; together they reclaim each device once.)
    expect(counts.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(5);
    expect(await used(l.id)).toBe(1);
    expect(await s.db.prisma.activation.count({ where: { licenseId: l.id, status: 'INACTIVE' } })).toBe(5);
    expect(await events('activation.reclaimed', l.id)).toHaveLength(5);
    expect(await heartbeatDevice(s, { key: l.key, fingerprint: 'idle-0' })).toMatchObject({ code: 'ACTIVATION_RELEASED' });
    expect((await heartbeatDevice(s, { key: l.key, fingerprint: 'idle-5' })).__typename).toBe('HeartbeatSuccess');
    // A reclaimed device may activate again, taking a fresh slot.
    expect(await activateDevice(s, { key: l.key, fingerprint: 'idle-0' })).toMatchObject({ __typename: 'ActivateSuccess', reused: false });
    expect(await used(l.id)).toBe(2);
    expect(await reclaimInactive(s.app.deps)).toBe(0);
  });
});

describe('validateLicense', () => {
  it('checks state, version, device and feature', async () => {
    const l = await issue(s, token, { maxActivations: 2, features: ['export'], allowedVersions: '^3.0.0' });
    await activateDevice(s, { key: l.key, fingerprint: 'v1', client: { appVersion: '3.1.0' } });
    expect(await validate(s, { key: l.key })).toMatchObject({ valid: true, code: null, license: { status: 'ACTIVE', features: ['export'], activationsUsed: 1 } });
    expect(await validate(s, { key: l.key, fingerprint: 'v1', version: '3.2.0', feature: 'export' })).toMatchObject({ valid: true });
    expect(await validate(s, { key: l.key, version: '2.0.0' })).toMatchObject({ valid: false, code: 'VERSION_NOT_ALLOWED' });
    expect(await validate(s, { key: l.key, fingerprint: 'v9' })).toMatchObject({ valid: false, code: 'NOT_ACTIVATED' });
    expect(await validate(s, { key: l.key, feature: 'import' })).toMatchObject({ valid: false, code: 'FEATURE_NOT_ENTITLED' });
    expect(await validate(s, { key: 'LIC-0000-000000000000-0000' })).toEqual({ valid: false, code: 'LICENSE_NOT_FOUND', license: null });
  });
});

describe('bad input', () => {
  const VALIDATE_QUERY = `query($input: ValidateInput!) { validateLicense(input: $input) { valid } }`;
  async function snapshot() {
    return {
      activations: await s.db.prisma.activation.count(),
      events: await s.db.prisma.auditEvent.count(),
      licenses: await s.db.prisma.license.findMany({ select: { id: true, activationsUsed: true }, orderBy: { id: 'asc' } }),
    };
  }

  it('malformed, unknown and oversized input gives typed errors and changes nothing', async () => {
    const l = await issue(s, token, { maxActivations: 5 });
    const unknownKey = generateKey('LIC');
    const before = await snapshot();
    const cases: [Record<string, unknown>, string][] = [
      [{ key: 'not a key', fingerprint: 'f' }, 'LICENSE_NOT_FOUND'],
      [{ key: 'x'.repeat(10_000), fingerprint: 'f' }, 'LICENSE_NOT_FOUND'],
      [{ key: unknownKey, fingerprint: 'f' }, 'LICENSE_NOT_FOUND'],
      [{ key: 'TOK-0000-000000000000-0000', fingerprint: 'f' }, 'LICENSE_NOT_FOUND'],
      [{ key: generateKey('TOK'), fingerprint: 'f' }, 'LICENSE_NOT_FOUND'],
      [{ key: l.key.slice(0, -1), fingerprint: 'f' }, 'LICENSE_NOT_FOUND'],
      [{ key: l.key, fingerprint: '' }, 'ValidationError'],
      [{ key: l.key, fingerprint: 'f'.repeat(10_240) }, 'ValidationError'],
      [{ key: l.key, fingerprint: 'f', components: components(...Array.from({ length: 1000 }, (_, i) => `c${i}`)) }, 'ValidationError'],
      [{ key: l.key, fingerprint: 'f', components: [{ kind: 'MAC', value: 'v'.repeat(10_000) }] }, 'ValidationError'],
      [{ key: l.key, fingerprint: 'f', client: { hostname: 'h'.repeat(5000) } }, 'ValidationError'],
      [{ key: l.key, fingerprint: 'f', idempotencyKey: 'k'.repeat(1000) }, 'ValidationError'],
    ];
    for (const [input, expected] of cases) {
      const r = await activateDevice(s, input);
      expect(r.__typename === 'ValidationError' ? 'ValidationError' : r.code, JSON.stringify(input).slice(0, 80)).toBe(expected);
    }
    expect(await heartbeatDevice(s, { key: unknownKey, fingerprint: 'f' })).toMatchObject({ code: 'LICENSE_NOT_FOUND' });
    expect(await heartbeatDevice(s, { key: l.key, fingerprint: 'f'.repeat(10_240) })).toMatchObject({ __typename: 'ValidationError' });
    expect(await deactivateDevice(s, { key: 'garbage', fingerprint: 'f' })).toMatchObject({ code: 'LICENSE_NOT_FOUND' });
    const v = await s.gql(`query($input: ValidateInput!) { validateLicense(input: $input) { valid } }`, { input: { key: l.key, fingerprint: 'f'.repeat(10_240) } });
    expect(v.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(await snapshot()).toEqual(before);
  });

  it('NUL characters and unpaired surrogates are ValidationErrors on their field, and a call batched with them is unaffected', async () => {
    const l = await issue(s, token, { maxActivations: 5, fingerprintMatch: 'MAJORITY' });
    await activateDevice(s, { key: l.key, fingerprint: 'pc-1' });
    const before = await snapshot();
    const fieldOf = (r: { __typename: string; fields?: { path: string }[] }) => (r.__typename === 'ValidationError' ? r.fields!.map((f) => f.path).join(',') : r.__typename);
    const activations: [Record<string, unknown>, string][] = [
      [{ fingerprint: 'a\u0000b' }, 'fingerprint'],
      // The driver would store a lone surrogate as U+FFFD: "pc-\ud800" and "pc-\udbff" one device.
      [{ fingerprint: 'pc-\ud800' }, 'fingerprint'],
      [{ fingerprint: 'f', client: { hostname: 'h\u0000' } }, 'client.hostname'],
      [{ fingerprint: 'f', components: [{ kind: 'MAC', value: '\ud800' }] }, 'components.0.value'],
      [{ fingerprint: 'f', components: [{ kind: 'M\u0000', value: 'v' }] }, 'components.0.kind'],
      [{ fingerprint: 'f', idempotencyKey: 'i\u0000' }, 'idempotencyKey'],
    ];
    for (const [input, path] of activations) expect(fieldOf(await activateDevice(s, { key: l.key, ...input })), JSON.stringify(input)).toBe(path);
    expect(fieldOf(await heartbeatDevice(s, { key: l.key, fingerprint: 'pc-\udfff' }))).toBe('fingerprint');
    expect(fieldOf(await heartbeatDevice(s, { key: l.key, fingerprint: 'pc-1', client: { osVersion: '1\u0000' } }))).toBe('client.osVersion');
    expect(fieldOf(await deactivateDevice(s, { key: l.key, fingerprint: 'pc-1\u0000' }))).toBe('fingerprint');
    for (const input of [{ fingerprint: 'a\u0000' }, { feature: '\ud800' }, { version: '1.0\u0000' }]) {
      const v = await s.gql(VALIDATE_QUERY, { input: { key: l.key, ...input } });
      expect(v.errors?.[0]?.extensions?.code, JSON.stringify(input)).toBe('BAD_USER_INPUT');
    }
    // Calls sent together share one statement: a bad one among them is refused alone.
    const together = await Promise.all([
      ...Array.from({ length: 8 }, () => heartbeatDevice(s, { key: l.key, fingerprint: 'pc-1' })),
      heartbeatDevice(s, { key: l.key, fingerprint: 'pc-1', client: { hostname: 'evil\u0000' } }),
      ...Array.from({ length: 4 }, (_, i) => activateDevice(s, { key: l.key, fingerprint: i % 2 ? 'x\u0000' : 'pc-1' })),
    ]);
    expect(together.map(fieldOf)).toEqual([
      ...Array(8).fill('HeartbeatSuccess'),
      'client.hostname',
      'ActivateSuccess', 'fingerprint', 'ActivateSuccess', 'fingerprint',
    ]);
    const after = await snapshot();
    // The good calls wrote what they write (heartbeat and reuse audit rows); no refused call wrote anything.
    expect({ ...after, events: 0 }).toEqual({ ...before, events: 0 });
    expect(after.events - before.events).toBe(10);
  });

  it('a well-formed unknown key and a known key cost the same single lookup (no timing oracle by work done)', async () => {
    const l = await issue(s, token, { maxActivations: 5 });
    await s.db.prisma.license.update({ where: { id: l.id }, data: { state: 'REVOKED' } });
    const unknownKey = generateKey('LIC');
    // Count the database calls each answer costs (timing itself is too noisy to assert on shared machines).
    const prisma = s.app.deps.prisma as unknown as Record<string, unknown>;
    const request = new AsyncLocalStorage<true>();
    const calls: string[] = [];
    const restore: (() => void)[] = [];
    const spy = (target: Record<string, unknown>, name: string, label: string) => {
      const original = target[name] as (...args: unknown[]) => unknown;
      target[name] = (...args: unknown[]) => {
        // Only this request's own calls: background sweeps run beside it on their own async contexts.
        if (request.getStore()) calls.push(label);
        return original.apply(target, args);
      };
      restore.push(() => {
        target[name] = original;
      });
    };
    for (const m of ['$queryRaw', '$queryRawUnsafe', '$executeRaw', '$executeRawUnsafe', '$transaction']) spy(prisma, m, m);
    const sql = s.app.deps.db.sql as unknown as Record<string, unknown>;
    for (const m of ['query', 'exec']) spy(sql, m, `sql.${m}`);
    for (const model of ['license', 'activation', 'tokenKey', 'idempotencyRecord']) {
      const delegate = prisma[model] as Record<string, unknown>;
      for (const m of ['findFirst', 'findUnique', 'findMany', 'findFirstOrThrow', 'findUniqueOrThrow', 'count']) spy(delegate, m, `${model}.${m}`);
    }
    const cost = async (key: string) => {
      calls.length = 0;
      const r = await request.run(true, () => s.gql(ACTIVATE, { input: { key, fingerprint: 'timing' } }));
      return { code: r.data.activate.code as string, calls: [...calls] };
    };
    try {
      const known = await cost(l.key);
      const unknown = await cost(unknownKey);
      expect(known.code).toBe('LICENSE_REVOKED');
      expect(unknown.code).toBe('LICENSE_NOT_FOUND');
      expect(unknown.calls).toEqual(known.calls);
      expect(known.calls).toHaveLength(1);
    } finally {
      for (const r of restore) r();
    }
  });
});

describe('tenant isolation', () => {
  it("node(id:) gives null for another tenant's activation, and BAD_USER_INPUT for a malformed id", async () => {
    const l = await issue(s, token, { maxActivations: 5 });
    const mine = await activateDevice(s, { key: l.key, fingerprint: 'iso-1' });
    const NODE = `query($id: ID!) { node(id: $id) { __typename ... on Activation { fingerprint } } }`;
    expect(ok(await s.gql(NODE, { id: mine.activation.id }, { token })).node).toEqual({ __typename: 'Activation', fingerprint: 'iso-1' });
    const other = await s.tenant();
    expect(ok(await s.gql(NODE, { id: mine.activation.id }, { token: other.token })).node).toBeNull();
    const bad = await s.gql(NODE, { id: Buffer.from('Activation:not-a-uuid').toString('base64') }, { token });
    expect(bad.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });
});

describe('signing keys', () => {
  const ROTATE = `mutation { rotateSigningKey { __typename ... on SigningKey { kid retiredAt } ... on Error { message } } }`;
  const KEYS = `{ signingKeys { kid retiredAt } }`;

  it('rotation signs with a new kid and keeps old tokens verifiable through the JWKS', async () => {
    const l = await issue(s, token, { maxActivations: 5 });
    const before = await activateDevice(s, { key: l.key, fingerprint: 'rot-1' });
    const oldKid = decodeProtectedHeader(before.token).kid;
    const rotated = ok(await s.gql(ROTATE, {}, { token })).rotateSigningKey;
    expect(rotated.__typename).toBe('SigningKey');
    expect(rotated.kid).not.toBe(oldKid);
    const after = await activateDevice(s, { key: l.key, fingerprint: 'rot-2' });
    expect(decodeProtectedHeader(after.token).kid).toBe(rotated.kid);

    const set = await jwks();
    expect(set.keys.map((k) => k.kid).sort()).toEqual([oldKid, rotated.kid].sort());
    expect(set.keys.every((k) => k.kty === 'OKP' && k.crv === 'Ed25519' && !('d' in k))).toBe(true);
    const verify = createLocalJWKSet(set);
    await expect(jwtVerify(before.token, verify)).resolves.toBeTruthy();
    await expect(jwtVerify(after.token, verify)).resolves.toBeTruthy();
    const keys = ok(await s.gql(KEYS, {}, { token })).signingKeys;
    expect(keys.find((k: { kid: string }) => k.kid === oldKid).retiredAt).not.toBeNull();
    expect(await events('signing_key.rotated')).toHaveLength(1);
  });

  it('serves the JWKS over the real HTTP server to a plain remote JWKS verifier', async () => {
    const l = await issue(s, token, { maxActivations: 5 });
    const a = await activateDevice(s, { key: l.key, fingerprint: 'remote' });
    await new Promise<void>((resolve) => s.app.server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = s.app.server.address() as AddressInfo;
      const res = await fetch(`http://127.0.0.1:${port}/.well-known/jwks.json?tenant=${slug}`);
      expect(res.headers.get('content-type')).toContain('application/jwk-set+json');
      const remote = createRemoteJWKSet(new URL(`http://127.0.0.1:${port}/.well-known/jwks.json?tenant=${slug}`));
      const { payload, protectedHeader } = await jwtVerify(a.token, remote, { typ: 'tessera-activation+jwt', issuer: slug, algorithms: ['EdDSA'] });
      expect(protectedHeader.kid).toBeTruthy();
      expect(payload).toMatchObject({ sub: l.id, fingerprint: 'remote' });
    } finally {
      await new Promise<void>((resolve) => s.app.server.close(() => resolve()));
    }
  });

  it("another tenant's JWKS does not verify this tenant's tokens; unknown tenants are 404", async () => {
    const l = await issue(s, token, { maxActivations: 5 });
    const a = await activateDevice(s, { key: l.key, fingerprint: 'iso' });
    const other = await s.tenant();
    await expect(jwtVerify(a.token, createLocalJWKSet(await jwks(other.slug)))).rejects.toThrow();
    expect((await s.fetch('/.well-known/jwks.json?tenant=no-such-tenant')).status).toBe(404);
    expect((await s.fetch('/.well-known/jwks.json')).status).toBe(400);
  });

  it('private keys are stored encrypted; only OWNER may rotate', async () => {
    const rows = await s.db.prisma.signingKey.findMany({ where: { tenantId } });
    expect(rows.length).toBeGreaterThan(0);
    for (const r of rows) {
      expect(r.encryptedPrivateKey).toMatch(/^v1\./);
      expect(r.encryptedPrivateKey).not.toContain('PRIVATE KEY');
    }
    const CREATE_TOKEN = `mutation($input: CreateApiTokenInput!) { createApiToken(input: $input) { __typename ... on CreateApiTokenPayload { token } ... on Error { message } } }`;
    const created = ok(await s.gql(CREATE_TOKEN, { input: { name: 'admin', role: 'ADMIN' } }, { token }));
    const r = await s.gql(ROTATE, {}, { token: created.createApiToken.token });
    expect(r.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
  });
});
