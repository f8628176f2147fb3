import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ok, startTestServer, type TestServer } from '../../../test/harness.ts';
import { type Issued, issueLicense } from './fixtures.ts';
import { sweepLeases } from './service.ts';

/**
 * A floating license whose seats are lowered under leases already granted (renewal to another edition,
 * an admin update): the leases beyond the new count, the most recently granted ones, are not renewed
 * and end; the longest-held keep their seats; checkouts and the queue keep to the new count.
 */

let s: TestServer;
let token: string;
beforeAll(async () => {
  s = await startTestServer();
  ({ token } = await s.tenant());
});
afterAll(() => s.close());

const CHECKOUT = `mutation($input: CheckoutSeatInput!) {
  checkoutSeat(input: $input) { __typename ... on SeatLease { id status } ... on SeatQueued { position } ... on LicensingError { code message } ... on ValidationError { message } }
}`;
const lease = (op: 'heartbeatSeat' | 'releaseSeat') => `mutation($input: LeaseInput!) { ${op}(input: $input) { __typename ... on SeatLease { id status } ... on LicensingError { code message } } }`;
const BORROW = `mutation($input: BorrowSeatInput!) { borrowSeat(input: $input) { __typename ... on SeatLease { id borrowed } ... on LicensingError { code message } ... on ValidationError { message } } }`;
const POSITION = `query($input: CheckoutSeatInput!) { seatQueuePosition(input: $input) { __typename ... on SeatQueuePosition { queued position } } }`;
const UPDATE = `mutation($input: UpdateLicenseInput!) { updateLicense(input: $input) { __typename ... on Error { message } ... on ValidationError { fields { path message } } } }`;

const checkout = async (input: Record<string, unknown>) => ok(await s.gql(CHECKOUT, { input })).checkoutSeat;
const heartbeat = async (leaseId: string, key: string) => ok(await s.gql(lease('heartbeatSeat'), { input: { leaseId, key } })).heartbeatSeat;
const release = async (leaseId: string, key: string) => ok(await s.gql(lease('releaseSeat'), { input: { leaseId, key } })).releaseSeat;
const position = async (key: string, fingerprint: string) => ok(await s.gql(POSITION, { input: { key, fingerprint } })).seatQueuePosition;

const dbId = (globalId: string) => Buffer.from(globalId, 'base64').toString().split(':')[1]!;
const floating = (seats: number) => issueLicense(s, token, { licenseType: 'FLOATING', provisioning: 'FLOATING', seats, leaseSeconds: 60 });

async function lowerSeats(lic: Issued, seats: number) {
  expect(ok(await s.gql(UPDATE, { input: { licenseId: lic.globalId, seats } }, { token })).updateLicense.__typename).toBe('License');
}

/** Leases for dev-0 .. dev-(n-1), granted in that order (their grant times a minute apart, oldest first). */
async function holders(lic: Issued, n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const got = await checkout({ key: lic.key, fingerprint: `dev-${i}` });
    expect(got.__typename).toBe('SeatLease');
    await s.db.prisma.lease.update({ where: { id: dbId(got.id) }, data: { grantedAt: new Date(Date.now() - (n - i) * 60_000) } });
    ids.push(got.id);
  }
  return ids;
}

/** The ACTIVE leases, asserting first that the SeatPool counter equals them. */
async function activeLeases(licenseId: string) {
  const [pool, active] = await Promise.all([
    s.db.prisma.seatPool.findUnique({ where: { licenseId } }),
    s.db.prisma.lease.findMany({ where: { licenseId, status: 'ACTIVE' }, select: { holder: true }, orderBy: { holder: 'asc' } }),
  ]);
  expect(pool?.used ?? 0).toBe(active.length);
  return active.map((l) => l.holder);
}

const events = (licenseId: string, type: string) => s.db.prisma.auditEvent.findMany({ where: { licenseId, type }, orderBy: { id: 'asc' } });

describe(`seats lowered under granted leases (${process.env.TEST_DATABASE_URL ? 'postgres' : 'pglite'})`, () => {
  it('5 leases, 2 seats: of heartbeats all in flight at once, the two longest-held renew; the three newest end with LEASE_EXPIRED, each audited', async () => {
    const lic = await floating(5);
    const ids = await holders(lic, 5);
    await lowerSeats(lic, 2);

    // Every lease heartbeats twice, all twenty calls at once.
    const results = await Promise.all([...ids, ...ids, ...ids, ...ids].map((id) => heartbeat(id, lic.key)));
    results.forEach((r, i) => {
      const holder = i % 5;
      if (holder < 2) expect(r, `dev-${holder}`).toMatchObject({ __typename: 'SeatLease', status: 'ACTIVE' });
      else expect(r, `dev-${holder}`).toMatchObject({ __typename: 'LicensingError', code: 'LEASE_EXPIRED' });
    });
    expect(await activeLeases(lic.id)).toEqual(['dev-0', 'dev-1']);
    const ended = await events(lic.id, 'lease.expired');
    expect(ended.map((e) => e.subjectId).sort()).toEqual(ids.slice(2).map(dbId).sort());
    for (const e of ended) expect(e.payload).toMatchObject({ reason: 'seats_reduced', seats: 2 });
    expect(await events(lic.id, 'lease.renewed')).toHaveLength(8);
    for (const id of ids.slice(2)) {
      expect(await s.db.prisma.lease.findUniqueOrThrow({ where: { id: dbId(id) } })).toMatchObject({ status: 'EXPIRED', activeHolder: null });
      // An ended lease stays ended: its heartbeat and release get the same answer, and change nothing.
      expect(await heartbeat(id, lic.key)).toMatchObject({ code: 'LEASE_EXPIRED' });
      expect(await release(id, lic.key)).toMatchObject({ code: 'LEASE_EXPIRED' });
    }
    expect(await events(lic.id, 'lease.expired')).toHaveLength(3);

    // Checkouts keep to the new count: the ended holders and newcomers get no seat until one is released.
    expect(await checkout({ key: lic.key, fingerprint: 'dev-3' })).toMatchObject({ code: 'NO_SEATS_AVAILABLE' });
    expect(await checkout({ key: lic.key, fingerprint: 'new-1' })).toMatchObject({ code: 'NO_SEATS_AVAILABLE' });
    expect(await release(ids[0]!, lic.key)).toMatchObject({ __typename: 'SeatLease', status: 'RELEASED' });
    expect((await checkout({ key: lic.key, fingerprint: 'new-1' })).__typename).toBe('SeatLease');
    expect(await checkout({ key: lic.key, fingerprint: 'new-2' })).toMatchObject({ code: 'NO_SEATS_AVAILABLE' });
    expect(await activeLeases(lic.id)).toEqual(['dev-1', 'new-1']);
  });

  it('a holder beyond the seats checking out again is not renewed: its lease ends and it is refused, or queued behind those waiting', async () => {
    const lic = await floating(4);
    const ids = await holders(lic, 4);
    expect(await checkout({ key: lic.key, fingerprint: 'waiting', wait: true })).toMatchObject({ __typename: 'SeatQueued', position: 1 });
    await lowerSeats(lic, 1);

    // Calls sent together share the batched checkout statement: neither renews there.
    const [third, fourth] = await Promise.all([checkout({ key: lic.key, fingerprint: 'dev-2' }), checkout({ key: lic.key, fingerprint: 'dev-3', wait: true })]);
    expect(third).toMatchObject({ code: 'NO_SEATS_AVAILABLE' });
    expect(fourth).toMatchObject({ __typename: 'SeatQueued', position: 2 });
    expect(await activeLeases(lic.id)).toEqual(['dev-0', 'dev-1']);
    expect((await events(lic.id, 'lease.expired')).map((e) => e.subjectId).sort()).toEqual(ids.slice(2).map(dbId).sort());

    // The one within the seats renews by checkout as by heartbeat.
    expect(await checkout({ key: lic.key, fingerprint: 'dev-0' })).toMatchObject({ __typename: 'SeatLease', id: ids[0] });
    expect(await heartbeat(ids[1]!, lic.key)).toMatchObject({ code: 'LEASE_EXPIRED' });
    expect(await activeLeases(lic.id)).toEqual(['dev-0']);

    // Releasing frees a seat for the queue only once the license is under its new count.
    expect(await events(lic.id, 'seat.available')).toHaveLength(0);
    expect(await position(lic.key, 'waiting')).toMatchObject({ queued: true, position: 1 });
    expect((await release(ids[0]!, lic.key)).status).toBe('RELEASED');
    expect(await events(lic.id, 'seat.available')).toHaveLength(1);
    expect(await checkout({ key: lic.key, fingerprint: 'newcomer' })).toMatchObject({ code: 'NO_SEATS_AVAILABLE' });
    expect(await checkout({ key: lic.key, fingerprint: 'dev-3', wait: true })).toMatchObject({ __typename: 'SeatQueued', position: 2 });
    expect((await checkout({ key: lic.key, fingerprint: 'waiting', wait: true })).__typename).toBe('SeatLease');
    expect(await activeLeases(lic.id)).toEqual(['waiting']);
  });

  it('a borrowed seat, which nothing can recall, keeps its place first; a lease beyond the seats cannot be borrowed', async () => {
    const lic = await floating(3);
    const ids = await holders(lic, 3);
    // The newest lease is borrowed for offline use.
    expect(ok(await s.gql(BORROW, { input: { leaseId: ids[2], key: lic.key, seconds: 3600 } })).borrowSeat).toMatchObject({ borrowed: true });
    await lowerSeats(lic, 2);
    expect(ok(await s.gql(BORROW, { input: { leaseId: ids[1], key: lic.key, seconds: 3600 } })).borrowSeat).toMatchObject({ code: 'LEASE_EXPIRED' });
    expect(await heartbeat(ids[0]!, lic.key)).toMatchObject({ __typename: 'SeatLease' });
    expect(await heartbeat(ids[1]!, lic.key)).toMatchObject({ code: 'LEASE_EXPIRED' });
    expect(await activeLeases(lic.id)).toEqual(['dev-0', 'dev-2']);
    expect(await events(lic.id, 'lease.borrowed')).toHaveLength(1);
  });

  it('leases that lapse while the license is over its new seats free none for the queue until it is under them', async () => {
    const lic = await floating(3);
    const ids = await holders(lic, 3);
    expect(await checkout({ key: lic.key, fingerprint: 'waiting', wait: true })).toMatchObject({ __typename: 'SeatQueued', position: 1 });
    await lowerSeats(lic, 1);
    // Two stop heartbeating and lapse (swept here, or by the app's own timed sweep: the same statement).
    for (const id of ids.slice(1)) await s.db.prisma.lease.update({ where: { id: dbId(id) }, data: { expiresAt: new Date(Date.now() - 1000) } });
    await sweepLeases(s.app.deps);
    expect(await activeLeases(lic.id)).toEqual(['dev-0']);
    expect(await events(lic.id, 'seat.available')).toHaveLength(0);
    await s.db.prisma.lease.update({ where: { id: dbId(ids[0]!) }, data: { expiresAt: new Date(Date.now() - 1000) } });
    await sweepLeases(s.app.deps);
    expect(await activeLeases(lic.id)).toEqual([]);
    expect((await events(lic.id, 'seat.available')).map((e) => e.payload)).toEqual([{ seats: 1 }]);
    expect((await checkout({ key: lic.key, fingerprint: 'waiting', wait: true })).__typename).toBe('SeatLease');
  });
});
