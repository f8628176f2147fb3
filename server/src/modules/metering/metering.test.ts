import { randomUUID } from 'node:crypto';
import { encodeGlobalID } from '@pothos/plugin-relay';
import { createLocalJWKSet, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../app.ts';
import { loadConfig } from '../../config.ts';
import { ok, startTestServer, testEnv, type TestServer } from '../../../test/harness.ts';
import { decodeJws, type Issued, issueLicense } from '../leases/fixtures.ts';
import { signerFor } from '../signing/service.ts';
import { sweepTickets } from './service.ts';

let s: TestServer;
let token: string;
let slug: string;

const TICKET = `id status quantity authorized meter window remaining expiresAt receipt`;
const usage = (op: 'authorizeUsage' | 'recordUsage') => `mutation($input: AuthorizeUsageInput!) {
  ${op}(input: $input) {
    __typename
    ... on UsageTicket { ${TICKET} }
    ... on LicensingError { code message }
    ... on ValidationError { message fields { path message } }
  }
}`;
const COMMIT = `mutation($input: CommitUsageInput!) {
  commitUsage(input: $input) {
    __typename
    ... on UsageTicket { ${TICKET} }
    ... on LicensingError { code message }
    ... on ValidationError { message fields { path message } }
  }
}`;
const RELEASE = `mutation($input: UsageTicketInput!) {
  releaseUsage(input: $input) { __typename ... on UsageTicket { ${TICKET} } ... on LicensingError { code } ... on ValidationError { message } }
}`;
const RECONCILE = `query($id: ID) {
  usageReconciliation(licenseId: $id) {
    __typename
    ... on UsageReconciliation { consistent balances { meter window quota used reserved ledgerUsed openReserved consistent } }
    ... on Error { message }
  }
}`;

let n = 0;
const idem = () => `idem-${++n}-${Math.random().toString(36).slice(2)}`;
const authorize = async (input: Record<string, unknown>) => ok(await s.gql(usage('authorizeUsage'), { input: { idempotencyKey: idem(), ...input } })).authorizeUsage;
const record = async (input: Record<string, unknown>) => ok(await s.gql(usage('recordUsage'), { input: { idempotencyKey: idem(), ...input } })).recordUsage;
const commit = async (input: Record<string, unknown>) => ok(await s.gql(COMMIT, { input })).commitUsage;

async function metered(meters: { meter: string; quota: number; period: string }[]): Promise<Issued> {
  return issueLicense(s, token, { meters }, { meters: meters.map((m) => m.meter) });
}

async function ledger(licenseId: string) {
  const rows = await s.db.prisma.usageLedgerEntry.findMany({ where: { licenseId } });
  return { count: rows.length, sum: rows.reduce((a, r) => a + r.quantity, 0) };
}

async function reconcile(globalId: string) {
  const r = ok(await s.gql(RECONCILE, { id: globalId }, { token })).usageReconciliation;
  expect(r.__typename).toBe('UsageReconciliation');
  return r;
}

beforeAll(async () => {
  s = await startTestServer();
  ({ token, slug } = await s.tenant());
});
afterAll(() => s?.close());

describe(`usage metering (${process.env.TEST_DATABASE_URL ? 'postgres' : 'pglite'})`, () => {
  it('authorizes with a signed receipt, commits part of it into the ledger, and reconciles', async () => {
    const lic = await metered([{ meter: 'api-calls', quota: 100, period: 'MONTH' }]);
    const t = await authorize({ key: lic.key, meter: 'api-calls', quantity: 30 });
    expect(t).toMatchObject({ __typename: 'UsageTicket', status: 'AUTHORIZED', quantity: 30, remaining: 70, window: new Date().toISOString().slice(0, 7) });
    expect(new Date(t.expiresAt).getTime()).toBeGreaterThan(Date.now());
    const { header, claims } = decodeJws(t.receipt);
    expect(header.typ).toMatch(/^tessera-.*\+jwt$/);
    expect(claims).toMatchObject({ license: lic.id, meter: 'api-calls', authorized: 30, status: 'AUTHORIZED', iss: slug });
    const jwks = await signerFor(s.app.deps).jwks(slug);
    await jwtVerify(t.receipt, createLocalJWKSet(jwks!));
    expect(await ledger(lic.id)).toEqual({ count: 0, sum: 0 });

    const c = await commit({ ticketId: t.id, key: lic.key, quantity: 12 });
    expect(c).toMatchObject({ __typename: 'UsageTicket', id: t.id, status: 'COMMITTED', quantity: 12, authorized: 30, remaining: 88 });
    expect(decodeJws(c.receipt).claims).toMatchObject({ status: 'COMMITTED', committed: 12 });
    expect(await ledger(lic.id)).toEqual({ count: 1, sum: 12 });
    expect((await commit({ ticketId: t.id, key: lic.key })).code).toBe('TICKET_ALREADY_COMMITTED');

    const all = await authorize({ key: lic.key, meter: 'api-calls', quantity: 8 });
    expect((await commit({ ticketId: all.id, key: lic.key })).quantity).toBe(8);
    const r = await reconcile(lic.globalId);
    expect(r.consistent).toBe(true);
    expect(r.balances).toEqual([
      { meter: 'api-calls', window: t.window, quota: 100, used: 20, reserved: 0, ledgerUsed: 20, openReserved: 0, consistent: true },
    ]);
    const types = (await s.db.prisma.auditEvent.findMany({ where: { licenseId: lic.id, type: { startsWith: 'usage.' } }, orderBy: { id: 'asc' } })).map((e) => [
      e.type,
      e.actorType,
      e.actorId,
    ]);
    expect(types).toEqual([
      ['usage.authorized', 'client', lic.id],
      ['usage.committed', 'client', lic.id],
      ['usage.authorized', 'client', lic.id],
      ['usage.committed', 'client', lic.id],
    ]);
  });

  it('1,001 concurrent one-unit recordUsage against a quota of 1,000 accept exactly 1,000', async () => {
    const lic = await metered([{ meter: 'renders', quota: 1000, period: 'NONE' }]);
    const results = await Promise.all(Array.from({ length: 1001 }, () => record({ key: lic.key, meter: 'renders', quantity: 1 })));
    const accepted = results.filter((r) => r.__typename === 'UsageTicket');
    const refused = results.filter((r) => r.__typename !== 'UsageTicket');
    expect(accepted).toHaveLength(1000);
    expect(refused.map((r) => r.code)).toEqual(['QUOTA_EXCEEDED']);
    expect(accepted.every((r) => r.status === 'COMMITTED')).toBe(true);
    expect(await ledger(lic.id)).toEqual({ count: 1000, sum: 1000 });
    const r = await reconcile(lic.globalId);
    expect(r.consistent).toBe(true);
    expect(r.balances[0]).toMatchObject({ quota: 1000, used: 1000, reserved: 0, ledgerUsed: 1000 });
    expect(await s.db.prisma.auditEvent.count({ where: { licenseId: lic.id, type: 'usage.recorded' } })).toBe(1000);
  }, 120_000);

  it('uses after the first (one statement, from the terms read before) see changed terms and state at once', async () => {
    const lic = await metered([{ meter: 'exports', quota: 10, period: 'NONE' }]);
    const first = await record({ key: lic.key, meter: 'exports', quantity: 1 });
    expect(first).toMatchObject({ __typename: 'UsageTicket', window: 'all', remaining: 9 });
    // Concurrent uses on the terms read before: the quota still holds exactly.
    const wave = await Promise.all(Array.from({ length: 12 }, () => record({ key: lic.key, meter: 'exports', quantity: 1 })));
    expect(wave.filter((r) => r.__typename === 'UsageTicket')).toHaveLength(9);
    expect(wave.filter((r) => r.__typename !== 'UsageTicket').map((r) => r.code)).toEqual(['QUOTA_EXCEEDED', 'QUOTA_EXCEEDED', 'QUOTA_EXCEEDED']);
    const UPDATE = `mutation($input: UpdateLicenseInput!) { updateLicense(input: $input) { __typename ... on Error { message } } }`;
    ok(await s.gql(UPDATE, { input: { licenseId: lic.globalId, meters: [{ meter: 'exports', quota: 20, period: 'DAY' }] } }, { token }));
    const today = new Date().toISOString().slice(0, 10);
    const key = idem();
    const raised = await record({ key: lic.key, meter: 'exports', quantity: 5, idempotencyKey: key });
    expect(raised).toMatchObject({ __typename: 'UsageTicket', window: today, quantity: 5, remaining: 15 });
    // The same idempotency key replays the original ticket.
    const again = await record({ key: lic.key, meter: 'exports', quantity: 5, idempotencyKey: key });
    expect(again).toMatchObject({ __typename: 'UsageTicket', id: raised.id });

    ok(await s.gql(`mutation($input: LicenseIdInput!) { suspendLicense(input: $input) { __typename } }`, { input: { licenseId: lic.globalId } }, { token }));
    expect((await record({ key: lic.key, meter: 'exports', quantity: 1 })).code).toBe('LICENSE_SUSPENDED');
    expect(await ledger(lic.id)).toEqual({ count: 11, sum: 15 });
    expect((await reconcile(lic.globalId)).consistent).toBe(true);
  });

  it('concurrent authorizations never reserve beyond the quota', async () => {
    const lic = await metered([{ meter: 'seats-min', quota: 100, period: 'DAY' }]);
    const results = await Promise.all(Array.from({ length: 60 }, () => authorize({ key: lic.key, meter: 'seats-min', quantity: 7 })));
    expect(results.filter((r) => r.__typename === 'UsageTicket')).toHaveLength(14);
    expect((await reconcile(lic.globalId)).balances[0]).toMatchObject({ reserved: 98, openReserved: 98, used: 0, consistent: true });
  });

  it('idempotency: same key + same parameters replays, other parameters are refused, 20 in flight execute once', async () => {
    const lic = await metered([{ meter: 'api-calls', quota: 1000, period: 'NONE' }]);
    const key = idem();
    const fired = await Promise.all(
      Array.from({ length: 20 }, () => s.gql(usage('recordUsage'), { input: { key: lic.key, meter: 'api-calls', quantity: 5, idempotencyKey: key } })),
    );
    const tickets = fired.map((r) => ok(r).recordUsage);
    expect(tickets.every((t) => t.__typename === 'UsageTicket')).toBe(true);
    expect(new Set(tickets.map((t) => t.id)).size).toBe(1);
    expect(new Set(tickets.map((t) => t.receipt)).size).toBe(1);
    expect(await ledger(lic.id)).toEqual({ count: 1, sum: 5 });
    expect(await s.db.prisma.auditEvent.count({ where: { licenseId: lic.id, type: 'usage.recorded' } })).toBe(1);

    const reused = ok(await s.gql(usage('recordUsage'), { input: { key: lic.key, meter: 'api-calls', quantity: 6, idempotencyKey: key } })).recordUsage;
    expect(reused.code).toBe('IDEMPOTENCY_KEY_REUSED');
    const asAuthorize = ok(await s.gql(usage('authorizeUsage'), { input: { key: lic.key, meter: 'api-calls', quantity: 5, idempotencyKey: key } })).authorizeUsage;
    expect(asAuthorize.code).toBe('IDEMPOTENCY_KEY_REUSED');

    // After a restart: a new app on the same database answers from the stored ticket.
    const app2 = await buildApp({ config: { ...loadConfig(testEnv), seedDemo: false }, db: s.db });
    const res = await app2.yoga.fetch('http://tessera.test/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: usage('recordUsage'), variables: { input: { key: lic.key, meter: 'api-calls', quantity: 5, idempotencyKey: key } } }),
    });
    const replay = ((await res.json()) as { data: { recordUsage: { id: string; receipt: string } } }).data.recordUsage;
    await app2.stop();
    expect(replay.receipt).toBe(tickets[0].receipt);
    expect(replay.id).toBe(tickets[0].id);
    expect(await ledger(lic.id)).toEqual({ count: 1, sum: 5 });

    // The same key on another license is another request.
    const other = await metered([{ meter: 'api-calls', quota: 10, period: 'NONE' }]);
    const o = ok(await s.gql(usage('recordUsage'), { input: { key: other.key, meter: 'api-calls', quantity: 5, idempotencyKey: key } })).recordUsage;
    expect(o.__typename).toBe('UsageTicket');
    expect(o.id).not.toBe(tickets[0].id);
  });

  it('expired tickets release their reservation (query time and sweep) and cannot be committed', async () => {
    const lic = await metered([{ meter: 'gpu-min', quota: 10, period: 'YEAR' }]);
    const a = await authorize({ key: lic.key, meter: 'gpu-min', quantity: 6 });
    const b = await authorize({ key: lic.key, meter: 'gpu-min', quantity: 4 });
    expect((await authorize({ key: lic.key, meter: 'gpu-min', quantity: 1 })).code).toBe('QUOTA_EXCEEDED');
    const past = new Date(Date.now() - 1000);
    const dbId = (g: string) => Buffer.from(g, 'base64').toString().split(':')[1]!;
    await s.db.prisma.usageTicket.update({ where: { id: dbId(a.id) }, data: { expiresAt: past } });
    // Query time: the lapsed reservation is given back when a new one would not fit.
    const c = await authorize({ key: lic.key, meter: 'gpu-min', quantity: 5 });
    expect(c).toMatchObject({ __typename: 'UsageTicket', remaining: 1 });
    expect((await commit({ ticketId: a.id, key: lic.key })).code).toBe('TICKET_EXPIRED');

    await s.db.prisma.usageTicket.update({ where: { id: dbId(b.id) }, data: { expiresAt: past } });
    const swept = await Promise.all([sweepTickets(s.app.deps), sweepTickets(s.app.deps)]);
    expect(swept[0] + swept[1]).toBe(1);
    expect((await commit({ ticketId: b.id, key: lic.key })).code).toBe('TICKET_EXPIRED');
    const released = await s.db.prisma.auditEvent.findMany({ where: { licenseId: lic.id, type: 'usage.released' } });
    expect(released).toHaveLength(2);
    expect(released.every((e) => e.actorType === 'system')).toBe(true);

    const rel = ok(await s.gql(RELEASE, { input: { ticketId: c.id, key: lic.key } })).releaseUsage;
    expect(rel).toMatchObject({ status: 'RELEASED', remaining: 10 });
    const r = await reconcile(lic.globalId);
    expect(r.consistent).toBe(true);
    expect(r.balances[0]).toMatchObject({ used: 0, reserved: 0 });
    expect(await ledger(lic.id)).toEqual({ count: 0, sum: 0 });
  });

  it('bad input gives typed errors and leaves the ledger alone', async () => {
    const lic = await metered([{ meter: 'api-calls', quota: 50, period: 'NONE' }]);
    const other = await metered([{ meter: 'api-calls', quota: 50, period: 'NONE' }]);
    const before = await s.db.prisma.usageLedgerEntry.count();
    const events = await s.db.prisma.auditEvent.count();

    expect((await record({ key: lic.key, meter: 'api-calls', quantity: 0 })).__typename).toBe('ValidationError');
    expect((await record({ key: lic.key, meter: 'api-calls', quantity: -5 })).__typename).toBe('ValidationError');
    expect((await record({ key: lic.key, meter: 'nope', quantity: 1 })).fields?.[0]?.path).toBe('meter');
    expect((await record({ key: lic.key, meter: 'api-calls', quantity: 2_147_483_647 })).code).toBe('QUOTA_EXCEEDED');
    const huge = await s.gql(usage('recordUsage'), { input: { key: lic.key, meter: 'api-calls', quantity: 2 ** 31, idempotencyKey: idem() } });
    expect(huge.errors?.length).toBeGreaterThan(0);
    expect((await record({ key: lic.key, meter: 'api-calls', quantity: 1, idempotencyKey: '' })).__typename).toBe('ValidationError');
    expect((await record({ key: lic.key, meter: 'api-calls', quantity: 1, idempotencyKey: 'k\u0000' })).fields?.[0]?.path).toBe('idempotencyKey');
    expect((await record({ key: lic.key, meter: 'api-calls', quantity: 1, fingerprint: 'pc-\ud800' })).fields?.[0]?.path).toBe('fingerprint');
    expect((await record({ key: 'LIC-0000-000000000000-0000', meter: 'api-calls', quantity: 1 })).code).toBe('LICENSE_NOT_FOUND');

    const t = await authorize({ key: lic.key, meter: 'api-calls', quantity: 5 });
    expect((await commit({ ticketId: t.id, key: lic.key, quantity: 6 })).fields?.[0]?.path).toBe('quantity');
    expect((await commit({ ticketId: t.id, key: lic.key, quantity: 0 })).__typename).toBe('ValidationError');
    expect((await commit({ ticketId: t.id, key: other.key })).__typename).toBe('ValidationError');
    expect((await commit({ ticketId: 'garbage', key: lic.key })).__typename).toBe('ValidationError');
    expect(await s.db.prisma.usageLedgerEntry.count()).toBe(before);
    // Only the one authorization above wrote an event.
    expect(await s.db.prisma.auditEvent.count()).toBe(events + 1);

    ok(await s.gql(`mutation($id: ID!) { suspendLicense(input: { licenseId: $id }) { __typename } }`, { id: lic.globalId }, { token }));
    expect((await record({ key: lic.key, meter: 'api-calls', quantity: 1 })).code).toBe('LICENSE_SUSPENDED');
    expect((await reconcile(lic.globalId)).consistent).toBe(true);
  });

  it('reconciliation is admin-only and tenant-scoped', async () => {
    const lic = await metered([{ meter: 'api-calls', quota: 5, period: 'NONE' }]);
    await record({ key: lic.key, meter: 'api-calls', quantity: 2 });
    const other = await s.tenant();
    // Another tenant's license is not found there, like a well-formed id that names no license: never 'consistent, no balances'.
    for (const [id, by] of [
      [lic.globalId, other.token],
      [encodeGlobalID('License', randomUUID()), token],
    ] as const) {
      const r = ok(await s.gql(RECONCILE, { id }, { token: by })).usageReconciliation;
      expect(r).toEqual({ __typename: 'NotFoundError', message: 'License not found' });
    }
    // The tenant's own reconciliation (no license) does not include the other tenant's balances.
    expect(ok(await s.gql(RECONCILE, {}, { token: other.token })).usageReconciliation).toEqual({ __typename: 'UsageReconciliation', consistent: true, balances: [] });
    expect((await s.gql(RECONCILE, { id: lic.globalId })).errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });

  it('a quota lowered under authorized tickets: they are honoured, new uses refused, and remaining is of the quota now, never below 0', async () => {
    const lic = await metered([{ meter: 'renders', quota: 100, period: 'NONE' }]);
    const held = await authorize({ key: lic.key, meter: 'renders', quantity: 60 });
    const small = await authorize({ key: lic.key, meter: 'renders', quantity: 5 });
    expect(held).toMatchObject({ __typename: 'UsageTicket', remaining: 40 });
    const UPDATE = `mutation($input: UpdateLicenseInput!) { updateLicense(input: $input) { __typename ... on Error { message } } }`;
    ok(await s.gql(UPDATE, { input: { licenseId: lic.globalId, meters: [{ meter: 'renders', quota: 50, period: 'NONE' }] } }, { token }));

    // Released: 60 stay reserved against 50, nothing is left (not 100 - 60 of the quota the balance last saw).
    const released = ok(await s.gql(RELEASE, { input: { ticketId: small.id, key: lic.key } })).releaseUsage;
    expect(released).toMatchObject({ __typename: 'UsageTicket', status: 'RELEASED', remaining: 0 });
    expect(await authorize({ key: lic.key, meter: 'renders', quantity: 1 })).toMatchObject({ code: 'QUOTA_EXCEEDED' });
    // The use authorized before is honoured; what is left is 0, not 50 - 60.
    expect(await commit({ ticketId: held.id, key: lic.key, quantity: 55 })).toMatchObject({ __typename: 'UsageTicket', status: 'COMMITTED', remaining: 0 });
    expect(await record({ key: lic.key, meter: 'renders', quantity: 1 })).toMatchObject({ code: 'QUOTA_EXCEEDED' });
    const r = await reconcile(lic.globalId);
    expect(r.balances[0]).toMatchObject({ quota: 50, used: 55, reserved: 0, consistent: true });

    ok(await s.gql(UPDATE, { input: { licenseId: lic.globalId, meters: [{ meter: 'renders', quota: 80, period: 'NONE' }] } }, { token }));
    expect(await record({ key: lic.key, meter: 'renders', quantity: 5 })).toMatchObject({ __typename: 'UsageTicket', remaining: 20 });
  });
});
