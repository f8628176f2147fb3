import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshPostgres, ok, startTestServer, testDatabaseUrl, type TestServer } from '../../../test/harness.ts';
import { waitForBlockedBy } from '../../../test/locks.ts';
import { type Issued, issueLicense } from './fixtures.ts';
import { sweepLeases } from './service.ts';

/**
 * Floating-seat edges found in review: each test here failed before its fix. The ones that need a second
 * connection holding a row lock (a license changed while a checkout waits for its seat counter, the
 * sweep's lock order) run on PostgreSQL only: PGlite has one connection, so nothing can wait for a lock there.
 */

let s: TestServer;
let token: string;
let fresh: Awaited<ReturnType<typeof freshPostgres>> | undefined;
beforeAll(async () => {
  fresh = testDatabaseUrl ? await freshPostgres(testDatabaseUrl) : undefined;
  s = await startTestServer({ databaseUrl: fresh?.url });
  ({ token } = await s.tenant());
});
afterAll(async () => {
  await s.close();
  await fresh?.drop();
});

const CHECKOUT = `mutation($input: CheckoutSeatInput!) {
  checkoutSeat(input: $input) { __typename ... on SeatLease { id expiresAt } ... on LicensingError { code } ... on ValidationError { message } }
}`;
const HEARTBEAT = `mutation($input: LeaseInput!) { heartbeatSeat(input: $input) { __typename ... on SeatLease { id } ... on LicensingError { code } } }`;
const BORROW = `mutation($input: BorrowSeatInput!) {
  borrowSeat(input: $input) { __typename ... on SeatLease { id expiresAt borrowed } ... on LicensingError { code } ... on ValidationError { message fields { path message } } }
}`;
const RELEASE = `mutation($input: LeaseInput!) { releaseSeat(input: $input) { __typename ... on SeatLease { id status } ... on LicensingError { code } } }`;
const UPDATE_LICENSE = `mutation($input: UpdateLicenseInput!) { updateLicense(input: $input) { __typename ... on Error { message } ... on ValidationError { fields { path message } } } }`;
const SUSPEND = `mutation($id: ID!) { suspendLicense(input: { licenseId: $id }) { __typename } }`;

const checkout = async (key: string, fingerprint: string) => ok(await s.gql(CHECKOUT, { input: { key, fingerprint } })).checkoutSeat;
const updateLicense = async (input: Record<string, unknown>) => ok(await s.gql(UPDATE_LICENSE, { input }, { token })).updateLicense;
const suspend = async (lic: Issued) => ok(await s.gql(SUSPEND, { id: lic.globalId }, { token })).suspendLicense;

const floating = (seats: number, terms: Record<string, unknown> = {}, overrides?: Record<string, unknown>) =>
  issueLicense(s, token, { licenseType: 'FLOATING', provisioning: 'FLOATING', seats, leaseSeconds: 60, ...terms }, { overrides });

const leaseId = (globalId: string) => Buffer.from(globalId, 'base64').toString().split(':')[1]!;

/** Moves a lease's expiry into the past, as if its holder had stopped heartbeating. */
async function lapse(leaseGlobalId: string) {
  await s.db.prisma.lease.update({ where: { id: leaseId(leaseGlobalId) }, data: { expiresAt: new Date(Date.now() - 1000) } });
}

/** The ACTIVE leases of the license, asserting first that its SeatPool counter equals them. */
async function activeLeases(licenseId: string) {
  const [pool, active] = await Promise.all([
    s.db.prisma.seatPool.findUnique({ where: { licenseId } }),
    s.db.prisma.lease.count({ where: { licenseId, status: 'ACTIVE' } }),
  ]);
  expect(pool?.used ?? 0).toBe(active);
  return active;
}

const granted = (licenseId: string) => s.db.prisma.auditEvent.count({ where: { licenseId, type: 'lease.granted' } });

describe('the seat counter of a license that leaves FLOATING provisioning', () => {
  it('still counts the leases it granted until they end: moved to NAMED and back, the license grants its seat again', async () => {
    const lic = await issueLicense(s, token, { licenseType: 'PERPETUAL', provisioning: 'FLOATING', seats: 1, leaseSeconds: 60 });
    const held = await checkout(lic.key, 'dev-a');
    expect(held.__typename).toBe('SeatLease');
    await lapse(held.id);

    expect(await updateLicense({ licenseId: lic.globalId, provisioning: 'NAMED', seats: null, leaseSeconds: null })).toMatchObject({ __typename: 'License' });
    // Reclaims the lapsed lease (and gives its seat back to the counter), then refuses: no floating seats now.
    expect(await checkout(lic.key, 'dev-b')).toMatchObject({ code: 'NO_SEATS_AVAILABLE' });
    expect(await s.db.prisma.lease.findUniqueOrThrow({ where: { id: leaseId(held.id) } })).toMatchObject({ status: 'EXPIRED' });
    expect(await activeLeases(lic.id)).toBe(0);

    expect(await updateLicense({ licenseId: lic.globalId, provisioning: 'FLOATING', seats: 1, leaseSeconds: 60 })).toMatchObject({ __typename: 'License' });
    expect((await checkout(lic.key, 'dev-c')).__typename).toBe('SeatLease');
    expect(await activeLeases(lic.id)).toBe(1);
  });
});

describe('borrowing a live lease', () => {
  it('on a license that allows no borrowing is refused on the duration asked for; the lease stays live', async () => {
    const lic = await floating(1, {}, { metadata: { maxBorrowSeconds: 0 } });
    const held = await checkout(lic.key, 'dev-a');
    const borrowed = ok(await s.gql(BORROW, { input: { leaseId: held.id, key: lic.key, seconds: 3600 } })).borrowSeat;
    expect(borrowed).toMatchObject({ __typename: 'ValidationError', fields: [{ path: 'seconds' }] });
    expect(ok(await s.gql(HEARTBEAT, { input: { leaseId: held.id, key: lic.key } })).heartbeatSeat).toMatchObject({ __typename: 'SeatLease', id: held.id });
    expect(await s.db.prisma.auditEvent.count({ where: { licenseId: lic.id, type: 'lease.borrowed' } })).toBe(0);
  });

  it("a license's maxBorrowSeconds must be a whole number of seconds up to a year; one stored otherwise is never an internal error", async () => {
    const CREATE = `mutation($input: CreateLicenseInput!) { createLicense(input: $input) { __typename ... on ValidationError { fields { path } } } }`;
    const lic = await floating(2);
    const editionId = (await s.db.prisma.license.findUniqueOrThrow({ where: { id: lic.id } })).editionId;
    const { encodeGlobalID } = await import('@pothos/plugin-relay');
    for (const bad of ['7d', 1.5, 1e12, -5, true, { days: 7 }]) {
      const created = ok(await s.gql(CREATE, { input: { editionId: encodeGlobalID('Edition', editionId), metadata: { maxBorrowSeconds: bad } } }, { token })).createLicense;
      expect(created).toMatchObject({ __typename: 'ValidationError', fields: [{ path: 'metadata.maxBorrowSeconds' }] });
      expect(await updateLicense({ licenseId: lic.globalId, metadata: { maxBorrowSeconds: bad } })).toMatchObject({ __typename: 'ValidationError' });
    }
    expect(await updateLicense({ licenseId: lic.globalId, metadata: { maxBorrowSeconds: 7200 } })).toMatchObject({ __typename: 'License' });

    // Written before the rule (or by hand): a value that is no number of seconds leaves the default period.
    const held = await checkout(lic.key, 'dev-a');
    for (const [stored, seconds] of [['7d', 3600], [true, 3600], [{ days: 7 }, 3600], [1e12, 86_400], ['1800', 1800], [-5, null]] as const) {
      await s.db.prisma.license.update({ where: { id: lic.id }, data: { metadata: { maxBorrowSeconds: stored } } });
      const borrowed = ok(await s.gql(BORROW, { input: { leaseId: held.id, key: lic.key, seconds: 3600 } })).borrowSeat;
      if (seconds === null) expect(borrowed).toMatchObject({ __typename: 'ValidationError', fields: [{ path: 'seconds' }] });
      else {
        expect(borrowed).toMatchObject({ __typename: 'SeatLease', borrowed: true });
        expect(new Date(borrowed.expiresAt).getTime() - Date.now()).toBeLessThanOrEqual(Math.min(seconds, 3600) * 1000);
        expect(new Date(borrowed.expiresAt).getTime() - Date.now()).toBeGreaterThan(Math.min(seconds, 3600) * 1000 - 60_000);
      }
    }
  });

  it('of a subscription in its grace period is lent until the grace ends, no later; past the grace it is LICENSE_EXPIRED', async () => {
    const lic = await floating(2, { licenseType: 'SUBSCRIPTION', validityDays: 30, gracePeriodSeconds: 86_400 });
    const held = await checkout(lic.key, 'grace-1');
    const expiredAt = new Date(Date.now() - 60_000);
    await s.db.prisma.license.update({ where: { id: lic.id }, data: { expiresAt: expiredAt } });

    const borrowed = ok(await s.gql(BORROW, { input: { leaseId: held.id, key: lic.key, seconds: 7 * 86_400 } })).borrowSeat;
    expect(borrowed).toMatchObject({ __typename: 'SeatLease', borrowed: true });
    expect(new Date(borrowed.expiresAt).getTime()).toBe(expiredAt.getTime() + 86_400_000);

    await s.db.prisma.license.update({ where: { id: lic.id }, data: { expiresAt: new Date(Date.now() - 2 * 86_400_000) } });
    expect(ok(await s.gql(BORROW, { input: { leaseId: held.id, key: lic.key, seconds: 3600 } })).borrowSeat).toMatchObject({ code: 'LICENSE_EXPIRED' });
  });
});

describe.skipIf(!testDatabaseUrl)('row locks held by another transaction (PostgreSQL)', () => {
  let conn: pg.Client;
  let other: pg.Client;
  beforeAll(async () => {
    conn = new pg.Client({ connectionString: fresh!.url });
    other = new pg.Client({ connectionString: fresh!.url });
    await Promise.all([conn.connect(), other.connect()]);
  });
  afterAll(async () => {
    await conn?.end();
    await other?.end();
  });

  const lockPools = (client: pg.Client, ...licenseIds: string[]) =>
    client.query(`SELECT "licenseId" FROM "SeatPool" WHERE "licenseId" = ANY($1::uuid[]) ORDER BY "licenseId" FOR UPDATE`, [licenseIds]);

  it('a batched checkout waiting for the seat counter of a license suspended meanwhile is refused with LICENSE_SUSPENDED', async () => {
    const lic = await floating(3);
    // A first lease makes the pool row; the next checkout is one the batched statement grants.
    expect((await checkout(lic.key, 'dev-0')).__typename).toBe('SeatLease');
    await conn.query('BEGIN');
    await lockPools(conn, lic.id);
    const pending = checkout(lic.key, 'dev-1');
    await waitForBlockedBy(conn);
    // A suspension takes the License row, never the counter: it commits while the checkout waits.
    expect(await suspend(lic)).toMatchObject({ __typename: 'License' });
    await conn.query('COMMIT');
    expect(await pending).toMatchObject({ __typename: 'LicensingError', code: 'LICENSE_SUSPENDED' });
    expect(await activeLeases(lic.id)).toBe(1);
    expect(await granted(lic.id)).toBe(1);
  });

  it('seats lowered while two checkouts wait in one batched statement: both are refused, none past the new seat count', async () => {
    const lic = await floating(3);
    const gate = await floating(5);
    expect((await checkout(lic.key, 'dev-0')).__typename).toBe('SeatLease');
    expect((await checkout(gate.key, 'gate-0')).__typename).toBe('SeatLease');
    await conn.query('BEGIN');
    await lockPools(conn, lic.id);
    // One write statement in flight per process: a statement held on the gate's counter makes the two
    // calls below queue, so that they then share one statement, which waits for the license's counter.
    await other.query('BEGIN');
    await lockPools(other, gate.id);
    const first = checkout(gate.key, 'gate-1');
    await waitForBlockedBy(other);
    const pending = Promise.all([checkout(lic.key, 'dev-1'), checkout(lic.key, 'dev-2')]);
    await new Promise((resolve) => setTimeout(resolve, 200));
    await other.query('COMMIT');
    expect((await first).__typename).toBe('SeatLease');
    await waitForBlockedBy(conn);

    expect(await updateLicense({ licenseId: lic.globalId, seats: 1 })).toMatchObject({ __typename: 'License' });
    await conn.query('COMMIT');
    expect((await pending).map((r) => r.code)).toEqual(['NO_SEATS_AVAILABLE', 'NO_SEATS_AVAILABLE']);
    expect(await activeLeases(lic.id)).toBe(1);
    expect(await granted(lic.id)).toBe(1);
  });

  it('a checkout reclaiming a lapsed lease first (the one-call path) of a license suspended while it waits is refused with LICENSE_SUSPENDED', async () => {
    const lic = await floating(2);
    const held = await checkout(lic.key, 'dev-a');
    await lapse(held.id);
    await conn.query('BEGIN');
    await lockPools(conn, lic.id);
    const pending = checkout(lic.key, 'dev-b');
    await waitForBlockedBy(conn);
    expect(await suspend(lic)).toMatchObject({ __typename: 'License' });
    await conn.query('COMMIT');
    expect(await pending).toMatchObject({ __typename: 'LicensingError', code: 'LICENSE_SUSPENDED' });
    // The lapsed lease was reclaimed, and nothing granted.
    expect(await activeLeases(lic.id)).toBe(0);
    expect(await granted(lic.id)).toBe(1);
  });

  it('a checkout reclaiming a lapsed lease caught in a deadlock runs again instead of failing', async () => {
    const lic = await floating(1);
    const held = await checkout(lic.key, 'dev-a');
    await lapse(held.id);
    try {
      // The other party holds the seat counter and then expires the lapsed lease itself (as a sweep
      // might), the row the checkout's reclaim took first. It never checks for the deadlock itself (a
      // long deadlock_timeout), so the checkout is the one aborted.
      await conn.query(`SET deadlock_timeout = '10s'`);
      await conn.query('BEGIN');
      await lockPools(conn, lic.id);
      const pending = checkout(lic.key, 'dev-b');
      await waitForBlockedBy(conn);
      // Its seat given back only if it expired it (the app's own timed sweep may have come first).
      const expired = await conn.query(`UPDATE "Lease" SET status = 'EXPIRED', "activeHolder" = NULL, "endedAt" = now() WHERE id = $1 AND status = 'ACTIVE'`, [leaseId(held.id)]);
      if (expired.rowCount) await conn.query(`UPDATE "SeatPool" SET used = used - 1 WHERE "licenseId" = $1`, [lic.id]);
      await conn.query('COMMIT');
      expect(await pending).toMatchObject({ __typename: 'SeatLease' });
      expect(await activeLeases(lic.id)).toBe(1);
    } finally {
      await conn.query('ROLLBACK').catch(() => {});
      await conn.query('RESET deadlock_timeout');
    }
  });

  it('a release caught in a deadlock runs again instead of failing', async () => {
    const lic = await floating(2);
    const held = await checkout(lic.key, 'dev-a');
    try {
      // The other party holds the seat counter and then the lease the release took first, as a checkout
      // by the same holder does (its new lease waits on the unique holder the release is clearing). It
      // never checks for the deadlock itself (a long deadlock_timeout), so the release is the one aborted.
      await conn.query(`SET deadlock_timeout = '10s'`);
      await conn.query('BEGIN');
      await lockPools(conn, lic.id);
      const pending = s.gql(RELEASE, { input: { leaseId: held.id, key: lic.key } });
      await waitForBlockedBy(conn);
      await conn.query(`SELECT id FROM "Lease" WHERE id = $1 FOR UPDATE`, [leaseId(held.id)]);
      await conn.query('COMMIT');
      expect(ok(await pending).releaseSeat).toMatchObject({ __typename: 'SeatLease', status: 'RELEASED' });
      expect(await activeLeases(lic.id)).toBe(0);
      expect(await s.db.prisma.auditEvent.count({ where: { licenseId: lic.id, type: 'lease.released' } })).toBe(1);
    } finally {
      await conn.query('ROLLBACK').catch(() => {});
      await conn.query('RESET deadlock_timeout');
    }
  });

  /**
   * Floating licenses, each with one lease that has lapsed by `sweepAt` (not yet: the app's own timed
   * sweep must leave them to the sweeps these tests run), in licenseId order.
   */
  const sweepAt = () => new Date(Date.now() + 2 * 3600_000);
  async function withLapsingLeases(n: number): Promise<Issued[]> {
    const licenses = await Promise.all(Array.from({ length: n }, () => floating(2)));
    for (const lic of licenses) {
      const id = leaseId((await checkout(lic.key, 'lapsing')).id);
      await s.db.prisma.lease.update({ where: { id }, data: { expiresAt: new Date(Date.now() + 3600_000) } });
    }
    return licenses.sort((x, y) => (x.id < y.id ? -1 : 1));
  }

  it('the lease sweep takes the seat counters in licenseId order, as checkouts do', async () => {
    // Held in hash order, the counters after the first one would often be taken before it.
    for (let round = 0; round < 3; round++) {
      const [first, ...rest] = await withLapsingLeases(6);
      await conn.query('BEGIN');
      await lockPools(conn, first!.id);
      const sweep = sweepLeases(s.app.deps, sweepAt());
      try {
        await waitForBlockedBy(conn);
        // The sweep waits for the first counter and holds none after it.
        await conn.query(`SELECT "licenseId" FROM "SeatPool" WHERE "licenseId" = ANY($1::uuid[]) FOR UPDATE NOWAIT`, [rest.map((l) => l.id)]);
        await conn.query('COMMIT');
      } catch (err) {
        await conn.query('ROLLBACK');
        throw err;
      }
      expect(await sweep).toBeGreaterThanOrEqual(6);
      for (const lic of [first!, ...rest]) expect(await activeLeases(lic.id)).toBe(0);
    }
  });

  it('a lease sweep caught in a deadlock runs again instead of failing', async () => {
    const [a, b] = await withLapsingLeases(2);
    try {
      // The other party holds b and, later, asks for a: against the key order the sweep locks them in.
      // It never checks for the deadlock itself (a long deadlock_timeout), so the sweep is the one aborted.
      await conn.query(`SET deadlock_timeout = '10s'`);
      await conn.query('BEGIN');
      await lockPools(conn, b!.id);
      const sweep = sweepLeases(s.app.deps, sweepAt());
      await waitForBlockedBy(conn);
      await lockPools(conn, a!.id);
      await conn.query('COMMIT');
      // It resolves: run again after the deadlock instead of failing. That second run may come while the
      // aborted one is still letting go of its leases (PostgreSQL sends the error before it releases the
      // locks), and SKIP LOCKED passes over them: the next sweep takes them.
      const swept = await sweep;
      const after = swept >= 2 ? 0 : await sweepLeases(s.app.deps, sweepAt());
      expect(swept + after).toBeGreaterThanOrEqual(2);
      expect(await activeLeases(a!.id)).toBe(0);
      expect(await activeLeases(b!.id)).toBe(0);
      expect(await s.db.prisma.auditEvent.count({ where: { licenseId: { in: [a!.id, b!.id] }, type: 'lease.expired' } })).toBe(2);
    } finally {
      await conn.query('ROLLBACK').catch(() => {});
      await conn.query('RESET deadlock_timeout');
    }
  });
});
