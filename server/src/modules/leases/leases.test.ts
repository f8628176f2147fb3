import { createLocalJWKSet, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../app.ts';
import { loadConfig } from '../../config.ts';
import { ok, startTestServer, testEnv, type TestServer } from '../../../test/harness.ts';
import { signerFor } from '../signing/service.ts';
import { decodeJws, type Issued, issueLicense } from './fixtures.ts';
import { sweepLeases } from './service.ts';

let s: TestServer;
let token: string;
let slug: string;

const CHECKOUT = `mutation($input: CheckoutSeatInput!) {
  checkoutSeat(input: $input) {
    __typename
    ... on SeatLease { id expiresAt token status borrowed }
    ... on SeatQueued { position expiresAt }
    ... on LicensingError { code message }
    ... on ValidationError { message fields { path message } }
  }
}`;
const leaseOp = (op: 'heartbeatSeat' | 'releaseSeat') => `mutation($input: LeaseInput!) {
  ${op}(input: $input) {
    __typename
    ... on SeatLease { id expiresAt token status }
    ... on LicensingError { code message }
    ... on ValidationError { message }
  }
}`;
const BORROW = `mutation($input: BorrowSeatInput!) {
  borrowSeat(input: $input) { __typename ... on SeatLease { id expiresAt status borrowed token } ... on LicensingError { code } ... on ValidationError { message } }
}`;
const POSITION = `query($input: CheckoutSeatInput!) {
  seatQueuePosition(input: $input) { __typename ... on SeatQueuePosition { queued position } ... on LicensingError { code } }
}`;
const SEAT_MAP = `query($id: ID!) {
  seatMap(licenseId: $id) {
    __typename
    ... on SeatMap { seats inUse leases { id holder status borrowed } queue { holder } usage { day peak granted denials } holders { holder leases secondsHeld } }
    ... on Error { message }
  }
}`;

const checkout = async (input: Record<string, unknown>) => ok(await s.gql(CHECKOUT, { input })).checkoutSeat;
const heartbeat = async (leaseId: string, key: string) => ok(await s.gql(leaseOp('heartbeatSeat'), { input: { leaseId, key } })).heartbeatSeat;
const release = async (leaseId: string, key: string) => ok(await s.gql(leaseOp('releaseSeat'), { input: { leaseId, key } })).releaseSeat;

async function floating(seats: number, terms: Record<string, unknown> = {}): Promise<Issued> {
  return issueLicense(s, token, { licenseType: 'FLOATING', provisioning: 'FLOATING', seats, leaseSeconds: 60, ...terms });
}

async function liveLeases(licenseId: string) {
  return s.db.prisma.lease.count({ where: { licenseId, status: 'ACTIVE', expiresAt: { gt: new Date() } } });
}

/** The SeatPool counter must always equal the ACTIVE lease rows. */
async function poolUsed(licenseId: string) {
  const [pool, active] = await Promise.all([
    s.db.prisma.seatPool.findUnique({ where: { licenseId } }),
    s.db.prisma.lease.count({ where: { licenseId, status: 'ACTIVE' } }),
  ]);
  expect(pool?.used ?? 0).toBe(active);
  return active;
}

async function events(licenseId: string, type: string) {
  return s.db.prisma.auditEvent.findMany({ where: { licenseId, type }, orderBy: { id: 'asc' } });
}

/** Moves a lease's expiry into the past, as if its holder had stopped heartbeating. */
async function lapse(leaseGlobalId: string) {
  return lapseAt(leaseGlobalId, new Date(Date.now() - 1000));
}

/** Sets when a lease lapses (for sweeps run as of a later time than the app's own timed sweep). */
async function lapseAt(leaseGlobalId: string, expiresAt: Date) {
  const id = Buffer.from(leaseGlobalId, 'base64').toString().split(':')[1]!;
  await s.db.prisma.lease.update({ where: { id }, data: { expiresAt } });
  return id;
}

beforeAll(async () => {
  s = await startTestServer();
  ({ token, slug } = await s.tenant());
});
afterAll(() => s?.close());

describe(`floating seats (${process.env.TEST_DATABASE_URL ? 'postgres' : 'pglite'})`, () => {
  it('grants a signed lease, renews it by heartbeat and frees it on release', async () => {
    const lic = await floating(2);
    const got = await checkout({ key: lic.key, fingerprint: 'dev-a' });
    expect(got.__typename).toBe('SeatLease');
    expect(got.status).toBe('ACTIVE');
    const { header, claims } = decodeJws(got.token);
    expect(header.typ).toBe('tessera-lease+jwt');
    expect(claims).toMatchObject({ license: lic.id, fingerprint: 'dev-a', iss: slug });
    const jwks = await signerFor(s.app.deps).jwks(slug);
    const verified = await jwtVerify(got.token, createLocalJWKSet(jwks!), { typ: 'tessera-lease+jwt' });
    expect(verified.payload.exp).toBe(Math.floor(new Date(got.expiresAt).getTime() / 1000));

    await new Promise((r) => setTimeout(r, 20));
    const hb = await heartbeat(got.id, lic.key);
    expect(hb.__typename).toBe('SeatLease');
    expect(hb.id).toBe(got.id);
    expect(new Date(hb.expiresAt).getTime()).toBeGreaterThan(new Date(got.expiresAt).getTime());

    const rel = await release(got.id, lic.key);
    expect(rel).toMatchObject({ __typename: 'SeatLease', status: 'RELEASED' });
    expect(await liveLeases(lic.id)).toBe(0);
    expect((await heartbeat(got.id, lic.key)).code).toBe('LEASE_NOT_FOUND');
    expect((await release(got.id, lic.key)).code).toBe('LEASE_NOT_FOUND');

    const types = (await s.db.prisma.auditEvent.findMany({ where: { licenseId: lic.id, type: { startsWith: 'lease.' } }, orderBy: { id: 'asc' } })).map((e) => [e.type, e.actorType, e.actorId]);
    expect(types).toEqual([
      ['lease.granted', 'client', lic.id],
      ['lease.renewed', 'client', lic.id],
      ['lease.released', 'client', lic.id],
    ]);
  });

  it('50 concurrent checkouts for 10 seats grant exactly 10 leases', async () => {
    const lic = await floating(10);
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => checkout({ key: lic.key, fingerprint: `dev-${i}` })));
    const granted = results.filter((r) => r.__typename === 'SeatLease');
    const denied = results.filter((r) => r.__typename === 'LicensingError');
    expect(granted).toHaveLength(10);
    expect(denied).toHaveLength(40);
    expect(new Set(denied.map((r) => r.code))).toEqual(new Set(['NO_SEATS_AVAILABLE']));
    expect(await liveLeases(lic.id)).toBe(10);
    expect(await poolUsed(lic.id)).toBe(10);
    expect(await events(lic.id, 'lease.granted')).toHaveLength(10);

    const map = ok(await s.gql(SEAT_MAP, { id: lic.globalId }, { token })).seatMap;
    expect(map).toMatchObject({ __typename: 'SeatMap', seats: 10, inUse: 10 });
    expect(map.leases).toHaveLength(10);
    expect(map.usage[0]).toMatchObject({ peak: 10, granted: 10, denials: 40 });
    expect(map.holders).toHaveLength(10);
    expect(map.holders[0]).toMatchObject({ leases: 1 });
  });

  it('one device (or one user) holds one seat, however often it checks out, even concurrently', async () => {
    const lic = await floating(3);
    const same = await Promise.all(Array.from({ length: 20 }, () => checkout({ key: lic.key, fingerprint: 'dev-1' })));
    expect(same.every((r) => r.__typename === 'SeatLease')).toBe(true);
    expect(new Set(same.map((r) => r.id)).size).toBe(1);
    expect(await liveLeases(lic.id)).toBe(1);
    expect(await events(lic.id, 'lease.granted')).toHaveLength(1);
    expect(await events(lic.id, 'lease.renewed')).toHaveLength(19);

    const users = await floating(2, { clientType: 'USERS' });
    expect((await checkout({ key: users.key, fingerprint: 'laptop' })).__typename).toBe('ValidationError');
    const a1 = await checkout({ key: users.key, fingerprint: 'laptop', user: 'alice' });
    const a2 = await checkout({ key: users.key, fingerprint: 'desktop', user: 'alice' });
    expect(a2.id).toBe(a1.id);
    expect((await checkout({ key: users.key, fingerprint: 'laptop', user: 'bob' })).__typename).toBe('SeatLease');
    expect((await checkout({ key: users.key, fingerprint: 'laptop', user: 'carol' })).code).toBe('NO_SEATS_AVAILABLE');
  });

  it('an expired lease does not count, is reclaimed at checkout, and its late heartbeat gets LEASE_EXPIRED', async () => {
    const lic = await floating(1);
    const a = await checkout({ key: lic.key, fingerprint: 'dev-a' });
    expect((await checkout({ key: lic.key, fingerprint: 'dev-b' })).code).toBe('NO_SEATS_AVAILABLE');
    await lapse(a.id);
    const b = await checkout({ key: lic.key, fingerprint: 'dev-b' });
    expect(b.__typename).toBe('SeatLease');
    expect((await heartbeat(a.id, lic.key)).code).toBe('LEASE_EXPIRED');
    expect((await release(a.id, lic.key)).code).toBe('LEASE_EXPIRED');
    const expired = await events(lic.id, 'lease.expired');
    expect(expired).toHaveLength(1);
    expect(expired[0]!.actorType).toBe('system');
  });

  it('the sweep expires lapsed leases once, even when several run at once', async () => {
    const lic = await floating(30);
    const leases = await Promise.all(Array.from({ length: 30 }, (_, i) => checkout({ key: lic.key, fingerprint: `dev-${i}` })));
    // 25 leases lapse in 5 s, the other 5 in 60, and the sweeps run as of 10 s from now: the app's own
    // timed sweep (every 5 s, at the real time) must not take them first.
    for (const l of leases.slice(0, 25)) await lapseAt(l.id, new Date(Date.now() + 5_000));
    const at = new Date(Date.now() + 10_000);
    const swept = await Promise.all([sweepLeases(s.app.deps, at), sweepLeases(s.app.deps, at), sweepLeases(s.app.deps, at)]);
    expect(swept.reduce((a, b) => a + b, 0)).toBe(25);
    expect(await events(lic.id, 'lease.expired')).toHaveLength(25);
    expect(await liveLeases(lic.id)).toBe(5);
    expect(await poolUsed(lic.id)).toBe(5);
    expect((await heartbeat(leases[0].id, lic.key)).code).toBe('LEASE_EXPIRED');
    expect((await heartbeat(leases[29].id, lic.key)).__typename).toBe('SeatLease');
  });

  it('queues FIFO with wait: true; the head gets the next free seat', async () => {
    const lic = await floating(1);
    const a = await checkout({ key: lic.key, fingerprint: 'dev-a' });
    const q1 = await checkout({ key: lic.key, fingerprint: 'dev-b', wait: true });
    const q2 = await checkout({ key: lic.key, fingerprint: 'dev-c', wait: true });
    expect(q1).toMatchObject({ __typename: 'SeatQueued', position: 1 });
    expect(q2).toMatchObject({ __typename: 'SeatQueued', position: 2 });
    expect(ok(await s.gql(POSITION, { input: { key: lic.key, fingerprint: 'dev-c' } })).seatQueuePosition).toMatchObject({ queued: true, position: 2 });
    expect(ok(await s.gql(POSITION, { input: { key: lic.key, fingerprint: 'dev-z' } })).seatQueuePosition).toMatchObject({ queued: false, position: null });
    // Polling again keeps the place.
    expect(await checkout({ key: lic.key, fingerprint: 'dev-c', wait: true })).toMatchObject({ __typename: 'SeatQueued', position: 2 });

    await release(a.id, lic.key);
    expect(await events(lic.id, 'seat.available')).toHaveLength(1);
    // The seat is owed to the head: a newcomer and the second in line do not get it.
    expect((await checkout({ key: lic.key, fingerprint: 'dev-new' })).code).toBe('NO_SEATS_AVAILABLE');
    expect(await checkout({ key: lic.key, fingerprint: 'dev-c', wait: true })).toMatchObject({ __typename: 'SeatQueued', position: 2 });
    const head = await checkout({ key: lic.key, fingerprint: 'dev-b', wait: true });
    expect(head.__typename).toBe('SeatLease');
    expect(ok(await s.gql(POSITION, { input: { key: lic.key, fingerprint: 'dev-c' } })).seatQueuePosition.position).toBe(1);
    expect(await events(lic.id, 'seat.queued')).toHaveLength(2);

    // An expired queue entry loses its place.
    await s.db.prisma.seatQueueEntry.updateMany({ where: { licenseId: lic.id }, data: { expiresAt: new Date(Date.now() - 1000) } });
    await release(head.id, lic.key);
    expect((await checkout({ key: lic.key, fingerprint: 'dev-new' })).__typename).toBe('SeatLease');
  });

  it('a queued client polling seatQueuePosition keeps its place, as one checking out again does', async () => {
    const lic = await floating(1);
    await checkout({ key: lic.key, fingerprint: 'dev-a' });
    expect(await checkout({ key: lic.key, fingerprint: 'dev-b', wait: true })).toMatchObject({ __typename: 'SeatQueued', position: 1 });
    // The place is about to lapse (its client last checked out almost a lease period ago) ...
    const soon = new Date(Date.now() + 5_000);
    await s.db.prisma.seatQueueEntry.updateMany({ where: { licenseId: lic.id }, data: { expiresAt: soon } });
    // ... and the client polls: its place is kept for another lease period.
    const polled = ok(await s.gql(`query($input: CheckoutSeatInput!) { seatQueuePosition(input: $input) { ... on SeatQueuePosition { queued position expiresAt } } }`, { input: { key: lic.key, fingerprint: 'dev-b' } })).seatQueuePosition;
    expect(polled).toMatchObject({ queued: true, position: 1 });
    expect(new Date(polled.expiresAt).getTime()).toBeGreaterThan(soon.getTime() + 30_000);
    const entry = await s.db.prisma.seatQueueEntry.findFirstOrThrow({ where: { licenseId: lic.id } });
    expect(entry.expiresAt.getTime()).toBe(new Date(polled.expiresAt).getTime());
  });

  it('borrows a seat for offline use up to the maximum period; it stays held until returned', async () => {
    const lic = await floating(1);
    const a = await checkout({ key: lic.key, fingerprint: 'dev-a' });
    const b = ok(await s.gql(BORROW, { input: { leaseId: a.id, key: lic.key, seconds: 30 * 86_400 } })).borrowSeat;
    expect(b).toMatchObject({ __typename: 'SeatLease', borrowed: true });
    const days = (new Date(b.expiresAt).getTime() - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(6.9);
    expect(days).toBeLessThanOrEqual(7);
    expect((await checkout({ key: lic.key, fingerprint: 'dev-b' })).code).toBe('NO_SEATS_AVAILABLE');
    // A checkout by the borrower does not shorten the borrowed term.
    expect((await checkout({ key: lic.key, fingerprint: 'dev-a' })).expiresAt).toBe(b.expiresAt);
    expect((await release(a.id, lic.key)).status).toBe('RELEASED');
    expect((await checkout({ key: lic.key, fingerprint: 'dev-b' })).__typename).toBe('SeatLease');
    expect(await events(lic.id, 'lease.borrowed')).toHaveLength(1);
  });

  it('an operator frees a seat before its lease ends: the queue gets it, the holder is told to check out again', async () => {
    const RELEASE_LEASE = `mutation($input: ReleaseLeaseInput!) {
      releaseLease(input: $input) { __typename ... on Lease { id status endedAt } ... on Error { message } ... on ValidationError { fields { path message } } }
    }`;
    const releaseLease = async (leaseId: string, as = token) => ok(await s.gql(RELEASE_LEASE, { input: { leaseId } }, { token: as })).releaseLease;
    const lic = await floating(1);
    const a = await checkout({ key: lic.key, fingerprint: 'dev-a', user: 'ann' });
    expect(await checkout({ key: lic.key, fingerprint: 'dev-b', wait: true })).toMatchObject({ __typename: 'SeatQueued', position: 1 });

    const freed = await releaseLease(a.id);
    expect(freed).toMatchObject({ __typename: 'Lease', id: a.id, status: 'RELEASED' });
    expect(freed.endedAt).not.toBeNull();
    expect(await poolUsed(lic.id)).toBe(0);
    // The queue's head gets the seat; the holder's next call says its seat is gone, and to check out again.
    expect((await checkout({ key: lic.key, fingerprint: 'dev-b', wait: true })).__typename).toBe('SeatLease');
    const lost = await heartbeat(a.id, lic.key);
    expect(lost).toMatchObject({ __typename: 'LicensingError', code: 'LEASE_EXPIRED' });
    expect(lost.message).toMatch(/administrator released this seat/);
    expect((await release(a.id, lic.key)).code).toBe('LEASE_EXPIRED');
    expect(await poolUsed(lic.id)).toBe(1);

    const released = await events(lic.id, 'lease.released');
    expect(released.map((e) => [e.actorType, e.subjectType, (e.payload as { reason?: string }).reason])).toEqual([['api_token', 'Lease', 'released_by_operator']]);
    expect(await events(lic.id, 'seat.available')).toHaveLength(1);

    // Once ended it cannot be freed again; another tenant's operator finds nothing; a read-only member may not.
    expect(await releaseLease(a.id)).toMatchObject({ __typename: 'ConflictError', message: expect.stringMatching(/already ended/) });
    const holderB = (await s.db.prisma.lease.findFirstOrThrow({ where: { licenseId: lic.id, status: 'ACTIVE' } })).id;
    const bId = Buffer.from(`Lease:${holderB}`).toString('base64');
    const other = await s.tenant();
    expect((await releaseLease(bId, other.token)).__typename).toBe('NotFoundError');
    const ro = ok(await s.gql(`mutation { createApiToken(input: { name: "ro", role: READ_ONLY }) { ... on CreateApiTokenPayload { token } } }`, {}, { token })).createApiToken.token;
    expect((await s.gql(RELEASE_LEASE, { input: { leaseId: bId } }, { token: ro })).errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect((await releaseLease('not-an-id')).__typename).toBe('ValidationError');
    expect((await releaseLease(lic.globalId)).__typename).toBe('ValidationError');
    expect(await poolUsed(lic.id)).toBe(1);

    // A borrowed seat is held offline with a token valid until the borrow ends: it is not taken back.
    const borrowed = ok(await s.gql(BORROW, { input: { leaseId: bId, key: lic.key, seconds: 3600 } })).borrowSeat;
    expect(borrowed).toMatchObject({ __typename: 'SeatLease', borrowed: true });
    expect(await releaseLease(bId)).toMatchObject({ __typename: 'ConflictError', message: expect.stringMatching(/borrowed for offline use until/) });
    expect(await liveLeases(lic.id)).toBe(1);
    expect(await events(lic.id, 'lease.released')).toHaveLength(1);
  });

  it('an operator freeing seats while their holders renew and release them counts each seat once', async () => {
    const lic = await floating(20);
    const leases = await Promise.all(Array.from({ length: 20 }, (_, i) => checkout({ key: lic.key, fingerprint: `dev-${i}` })));
    expect(leases.every((l) => l.__typename === 'SeatLease')).toBe(true);
    const RELEASE_LEASE = `mutation($input: ReleaseLeaseInput!) { releaseLease(input: $input) { __typename } }`;
    // Every lease at once from both sides: the operator frees it while its holder renews it, and every other one is also released by its holder.
    const results = await Promise.all(
      leases.flatMap((l, i) => [
        s.gql(RELEASE_LEASE, { input: { leaseId: l.id } }, { token }).then((r) => ok(r).releaseLease.__typename as string),
        (i % 2 ? release(l.id, lic.key) : heartbeat(l.id, lic.key)).then((r) => (r.__typename === 'SeatLease' ? 'SeatLease' : r.code) as string),
      ]),
    );
    const operator = results.filter((_, i) => i % 2 === 0);
    // Each lease ended once: by the operator (Lease) or first by its holder (the operator's ConflictError).
    expect(operator.every((t) => t === 'Lease' || t === 'ConflictError')).toBe(true);
    const endings = await events(lic.id, 'lease.released');
    expect(endings).toHaveLength(20);
    expect(new Set(endings.map((e) => e.subjectId)).size).toBe(20);
    expect(endings.filter((e) => e.actorType !== 'client')).toHaveLength(operator.filter((t) => t === 'Lease').length);
    expect(await poolUsed(lic.id)).toBe(0);
  });

  it('refuses bad keys, other licenses\u2019 leases and unusable licenses with typed errors and no change', async () => {
    const lic = await floating(2);
    const other = await floating(2);
    const a = await checkout({ key: lic.key, fingerprint: 'dev-a' });
    expect((await checkout({ key: 'LIC-0000-000000000000-0000', fingerprint: 'x' })).code).toBe('LICENSE_NOT_FOUND');
    expect((await heartbeat(a.id, other.key)).code).toBe('LEASE_NOT_FOUND');
    expect((await release(a.id, other.key)).code).toBe('LEASE_NOT_FOUND');
    expect((await heartbeat('not-an-id', lic.key)).code).toBe('LEASE_NOT_FOUND');
    expect((await checkout({ key: lic.key, fingerprint: '' })).__typename).toBe('ValidationError');
    for (const input of [{ fingerprint: 'dev-\u0000' }, { fingerprint: 'dev-\ud800' }, { fingerprint: 'dev-b', user: 'u\u0000' }, { fingerprint: 'dev-b', department: '\udfff' }]) {
      expect((await checkout({ key: lic.key, ...input })).__typename, JSON.stringify(input)).toBe('ValidationError');
    }
    expect(await liveLeases(lic.id)).toBe(1);

    const named = await issueLicense(s, token, { maxActivations: 3 });
    expect((await checkout({ key: named.key, fingerprint: 'dev-a' })).code).toBe('NO_SEATS_AVAILABLE');

    ok(await s.gql(`mutation($id: ID!) { suspendLicense(input: { licenseId: $id }) { __typename } }`, { id: lic.globalId }, { token }));
    expect((await heartbeat(a.id, lic.key)).code).toBe('LICENSE_SUSPENDED');
    expect((await checkout({ key: lic.key, fingerprint: 'dev-b' })).code).toBe('LICENSE_SUSPENDED');
    ok(await s.gql(`mutation($id: ID!) { revokeLicense(input: { licenseId: $id }) { __typename } }`, { id: lic.globalId }, { token }));
    expect((await checkout({ key: lic.key, fingerprint: 'dev-b' })).code).toBe('LICENSE_REVOKED');
  });

  it('two server instances on one database never exceed the seats, and their sweeps expire each lease once', async () => {
    // Two instances share the master key (as production requires; the harness's, which encrypted the keys of
    // the tenants made before: a start checks it can open them) and a tenant whose signing key they create.
    const config = { ...loadConfig({ NODE_ENV: 'test', TESSERA_MASTER_KEY: testEnv.TESSERA_MASTER_KEY }), seedDemo: false };
    const [a, b] = [await buildApp({ config, db: s.db }), await buildApp({ config, db: s.db })];
    const tenant = await s.tenant();
    try {
      const lic = await issueLicense(s, tenant.token, { licenseType: 'FLOATING', provisioning: 'FLOATING', seats: 10, leaseSeconds: 60 });
      const via = (app: typeof a) => async (input: Record<string, unknown>) => {
        const res = await app.yoga.fetch('http://tessera.test/graphql', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ query: CHECKOUT, variables: { input } }),
        });
        const body = (await res.json()) as { data: { checkoutSeat: { __typename: string; id: string } } | null; errors?: unknown };
        if (!body.data) throw new Error(JSON.stringify(body.errors));
        return body.data.checkoutSeat;
      };
      const results = await Promise.all(Array.from({ length: 40 }, (_, i) => via(i % 2 ? b : a)({ key: lic.key, fingerprint: `dev-${i}` })));
      const granted = results.filter((r) => r.__typename === 'SeatLease');
      expect(granted).toHaveLength(10);
      expect(await poolUsed(lic.id)).toBe(10);
      // They lapse in 5 s and the sweeps run as of 10 s from now: the app's own timed sweep (every 5 s, at
      // the real time) must not take them first.
      for (const l of granted) await lapseAt(l.id, new Date(Date.now() + 5_000));
      const at = new Date(Date.now() + 10_000);
      const swept = await Promise.all([sweepLeases(a.deps, at), sweepLeases(b.deps, at), sweepLeases(a.deps, at), sweepLeases(b.deps, at)]);
      expect(swept.reduce((x, y) => x + y, 0)).toBe(10);
      expect(await events(lic.id, 'lease.expired')).toHaveLength(10);
      expect(await poolUsed(lic.id)).toBe(0);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });

  it('seat analytics per department and per user: leases, seat time and exact peak concurrent use per day', async () => {
    const lic = await floating(10, { clientType: 'USERS' });
    const BREAKDOWN = `query($id: ID!, $groupBy: SeatGrouping, $days: Int) {
      seatMap(licenseId: $id) { ... on SeatMap { breakdown(groupBy: $groupBy, days: $days) { day key leases secondsHeld peakConcurrent } } }
    }`;
    const take = (user: string, department?: string) => checkout({ key: lic.key, fingerprint: `fp-${user}`, user, ...(department ? { department } : {}) });
    const [ann, bob] = await Promise.all([take('ann', 'Engineering'), take('bob', 'Engineering'), take('cid', 'Sales'), take('dee')]);
    expect(ann.__typename).toBe('SeatLease');
    // Ann hands her seat over before Eve takes one: Engineering never holds three at once.
    expect((await release(ann.id, lic.key)).__typename).toBe('SeatLease');
    expect((await take('eve', 'Engineering')).__typename).toBe('SeatLease');
    // Bob checking out again (renewal) is no new lease.
    expect((await take('bob', 'Engineering')).id).toBe(bob.id);

    const today = new Date().toISOString().slice(0, 10);
    const rows = ok(await s.gql(BREAKDOWN, { id: lic.globalId, groupBy: 'DEPARTMENT', days: 7 }, { token })).seatMap.breakdown as {
      day: string;
      key: string | null;
      leases: number;
      secondsHeld: number;
      peakConcurrent: number;
    }[];
    const of = (key: string | null) => rows.find((r) => r.day === today && r.key === key);
    expect(of('Engineering')).toMatchObject({ leases: 3, peakConcurrent: 2 });
    expect(of('Sales')).toMatchObject({ leases: 1, peakConcurrent: 1 });
    expect(of(null)).toMatchObject({ leases: 1, peakConcurrent: 1 });
    expect(rows.every((r) => r.secondsHeld >= 0)).toBe(true);

    const users = ok(await s.gql(BREAKDOWN, { id: lic.globalId, groupBy: 'USER', days: 1 }, { token })).seatMap.breakdown as { key: string; leases: number }[];
    expect(users.map((u) => u.key).sort()).toEqual(['ann', 'bob', 'cid', 'dee', 'eve']);
    expect(users.find((u) => u.key === 'bob')!.leases).toBe(1);

    const bad = await s.gql(BREAKDOWN, { id: lic.globalId, groupBy: 'USER', days: 0 }, { token });
    expect(bad.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    const long = await checkout({ key: lic.key, fingerprint: 'fp-x', user: 'x', department: 'd'.repeat(129) });
    expect(long.__typename).toBe('ValidationError');
  });

  it('seat analytics count a seat held today however long ago it was granted (heartbeated for weeks, or borrowed)', async () => {
    const lic = await floating(5, { clientType: 'USERS' });
    const QUERY = `query($id: ID!) {
      seatMap(licenseId: $id) { ... on SeatMap { breakdown(groupBy: USER, days: 1) { day key leases secondsHeld peakConcurrent } holders(days: 1) { holder leases secondsHeld } } }
    }`;
    const held = await checkout({ key: lic.key, fingerprint: 'server-1', user: 'svc' });
    const lent = await checkout({ key: lic.key, fingerprint: 'laptop', user: 'nomad' });
    const DAY = 86_400_000;
    // What 40 days of heartbeats leave (granted then, renewed since), and a seat granted 50 days ago and borrowed until next week.
    await s.db.prisma.lease.update({ where: { id: Buffer.from(held.id, 'base64').toString().split(':')[1]! }, data: { grantedAt: new Date(Date.now() - 40 * DAY) } });
    await s.db.prisma.lease.update({
      where: { id: Buffer.from(lent.id, 'base64').toString().split(':')[1]! },
      data: { grantedAt: new Date(Date.now() - 50 * DAY), renewedAt: new Date(Date.now() - 50 * DAY), borrowed: true, expiresAt: new Date(Date.now() + 7 * DAY) },
    });
    const map = ok(await s.gql(QUERY, { id: lic.globalId }, { token })).seatMap;
    const today = new Date().toISOString().slice(0, 10);
    for (const user of ['svc', 'nomad']) {
      const row = map.breakdown.find((r: { day: string; key: string }) => r.day === today && r.key === user);
      expect(row).toMatchObject({ leases: 0, peakConcurrent: 1 });
      expect(row.secondsHeld).toBeGreaterThan(0);
      expect(row.secondsHeld).toBeLessThanOrEqual(86_400);
      const holder = map.holders.find((h: { holder: string }) => h.holder === user);
      expect(holder).toMatchObject({ leases: 1 });
      expect(holder.secondsHeld).toBeGreaterThan(0);
      expect(holder.secondsHeld).toBeLessThanOrEqual(86_400);
    }
  });

  it('a subscription in its grace period keeps serving seats; past the grace it is LICENSE_EXPIRED', async () => {
    const lic = await floating(2, { licenseType: 'SUBSCRIPTION', validityDays: 30, gracePeriodSeconds: 86_400 });
    const held = await checkout({ key: lic.key, fingerprint: 'grace-1' });
    await s.db.prisma.license.update({ where: { id: lic.id }, data: { expiresAt: new Date(Date.now() - 60_000) } });
    expect((await heartbeat(held.id, lic.key)).__typename).toBe('SeatLease');
    expect((await checkout({ key: lic.key, fingerprint: 'grace-2' })).__typename).toBe('SeatLease');
    await s.db.prisma.license.update({ where: { id: lic.id }, data: { expiresAt: new Date(Date.now() - 2 * 86_400_000) } });
    expect(await heartbeat(held.id, lic.key)).toMatchObject({ code: 'LICENSE_EXPIRED' });
    expect(await checkout({ key: lic.key, fingerprint: 'grace-3' })).toMatchObject({ code: 'LICENSE_EXPIRED' });
  });

  it('the seat map is tenant-scoped and needs a member', async () => {
    const lic = await floating(1);
    const other = await s.tenant();
    expect(ok(await s.gql(SEAT_MAP, { id: lic.globalId }, { token: other.token })).seatMap.__typename).toBe('NotFoundError');
    const anon = await s.gql(SEAT_MAP, { id: lic.globalId });
    expect(anon.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });
});
