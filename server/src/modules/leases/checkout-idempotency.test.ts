import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ok, startTestServer, type TestServer } from '../../../test/harness.ts';
import { expireIdempotencyRecords } from '../activation/retention.ts';
import { type Issued, issueLicense } from './fixtures.ts';

/**
 * checkoutSeat's idempotencyKey, as activation's and usage tickets': counted per license, the same key
 * with the same parameters answers as the first call did (and changes nothing), with other parameters
 * IDEMPOTENCY_KEY_REUSED; remembered for 24 hours. Also with many calls of one key at once.
 */

let s: TestServer;
let token: string;
beforeAll(async () => {
  s = await startTestServer();
  ({ token } = await s.tenant());
});
afterAll(() => s?.close());

const CHECKOUT = `mutation($input: CheckoutSeatInput!) {
  checkoutSeat(input: $input) {
    __typename
    ... on SeatLease { id expiresAt token status }
    ... on SeatQueued { position }
    ... on LicensingError { code }
    ... on ValidationError { fields { path message } }
  }
}`;
const RELEASE = `mutation($input: LeaseInput!) { releaseSeat(input: $input) { __typename ... on SeatLease { status } ... on LicensingError { code } } }`;

const checkout = async (input: Record<string, unknown>) => ok(await s.gql(CHECKOUT, { input })).checkoutSeat;
const floating = (seats: number, terms: Record<string, unknown> = {}) =>
  issueLicense(s, token, { licenseType: 'FLOATING', provisioning: 'FLOATING', seats, leaseSeconds: 60, ...terms });

const leases = (lic: Issued) => s.db.prisma.lease.count({ where: { licenseId: lic.id } });
const events = (lic: Issued, type: string) => s.db.prisma.auditEvent.count({ where: { licenseId: lic.id, type } });

describe(`checkoutSeat with an idempotency key (${process.env.TEST_DATABASE_URL ? 'postgres' : 'pglite'})`, () => {
  it('a retry answers as the first call did and renews nothing; the key with another device is IDEMPOTENCY_KEY_REUSED', async () => {
    const lic = await floating(5);
    const first = await checkout({ key: lic.key, fingerprint: 'dev-a', idempotencyKey: 'k-1' });
    expect(first).toMatchObject({ __typename: 'SeatLease', status: 'ACTIVE' });
    await new Promise((r) => setTimeout(r, 20));
    const retry = await checkout({ key: lic.key, fingerprint: 'dev-a', idempotencyKey: 'k-1' });
    expect(retry).toEqual(first);
    expect(await events(lic, 'lease.renewed')).toBe(0);

    for (const other of [{ fingerprint: 'dev-b' }, { fingerprint: 'dev-a', department: 'R&D' }, { fingerprint: 'dev-a', wait: true }]) {
      expect(await checkout({ key: lic.key, idempotencyKey: 'k-1', ...other })).toMatchObject({ __typename: 'LicensingError', code: 'IDEMPOTENCY_KEY_REUSED' });
    }
    expect(await leases(lic)).toBe(1);
    expect(await events(lic, 'lease.granted')).toBe(1);

    // Another key of the same device is another request: the device's lease, renewed.
    const again = await checkout({ key: lic.key, fingerprint: 'dev-a', idempotencyKey: 'k-2' });
    expect(again).toMatchObject({ __typename: 'SeatLease', id: first.id });
    expect(await events(lic, 'lease.renewed')).toBe(1);
  });

  it('keys count per license: one key on two licenses is two requests', async () => {
    const [a, b] = await Promise.all([floating(1), floating(1)]);
    const onA = await checkout({ key: a.key, fingerprint: 'dev-a', idempotencyKey: 'shared' });
    const onB = await checkout({ key: b.key, fingerprint: 'dev-b', idempotencyKey: 'shared' });
    expect(onA.__typename).toBe('SeatLease');
    expect(onB.__typename).toBe('SeatLease');
    expect(onB.id).not.toBe(onA.id);
  });

  it('many calls with one key at once: one lease; the same parameters all get its answer, others IDEMPOTENCY_KEY_REUSED', async () => {
    const lic = await floating(10);
    const same = await Promise.all(Array.from({ length: 20 }, () => checkout({ key: lic.key, fingerprint: 'dev-a', idempotencyKey: 'burst' })));
    expect(same.every((r) => r.__typename === 'SeatLease')).toBe(true);
    expect(new Set(same.map((r) => JSON.stringify(r))).size).toBe(1);
    expect(await leases(lic)).toBe(1);
    expect(await events(lic, 'lease.granted')).toBe(1);
    expect(await events(lic, 'lease.renewed')).toBe(0);

    const mixed = await floating(10);
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => checkout({ key: mixed.key, fingerprint: `dev-${i % 5}`, idempotencyKey: 'burst' })));
    const granted = answers.filter((r) => r.__typename === 'SeatLease');
    const refused = answers.filter((r) => r.__typename !== 'SeatLease');
    expect(new Set(granted.map((r) => JSON.stringify(r))).size).toBe(1);
    expect(granted.length).toBeGreaterThanOrEqual(1);
    expect(refused.every((r) => r.code === 'IDEMPOTENCY_KEY_REUSED')).toBe(true);
    expect(await leases(mixed)).toBe(1);
    expect(await events(mixed, 'lease.granted')).toBe(1);
  });

  it('keyed and unkeyed checkouts at once never exceed the seats', async () => {
    const lic = await floating(10);
    const answers = await Promise.all(
      Array.from({ length: 60 }, (_, i) => checkout({ key: lic.key, fingerprint: `dev-${i}`, ...(i % 2 ? { idempotencyKey: `k-${i}` } : {}) })),
    );
    expect(answers.filter((r) => r.__typename === 'SeatLease')).toHaveLength(10);
    expect(answers.filter((r) => r.__typename !== 'SeatLease').every((r) => r.code === 'NO_SEATS_AVAILABLE')).toBe(true);
    expect(await leases(lic)).toBe(10);
    expect((await s.db.prisma.seatPool.findUniqueOrThrow({ where: { licenseId: lic.id } })).used).toBe(10);
    // The refused keyed calls kept no record; the granted ones did.
    expect(await s.db.prisma.idempotencyRecord.count({ where: { scope: `checkout:${lic.id}` } })).toBe(answers.filter((r, i) => i % 2 && r.__typename === 'SeatLease').length);
  });

  it('a refusal or a place in the queue is not remembered: the same key checks out once a seat is free', async () => {
    const lic = await floating(1);
    const holder = await checkout({ key: lic.key, fingerprint: 'dev-a' });
    expect(await checkout({ key: lic.key, fingerprint: 'dev-b', idempotencyKey: 'later' })).toMatchObject({ code: 'NO_SEATS_AVAILABLE' });
    expect(await checkout({ key: lic.key, fingerprint: 'dev-c', idempotencyKey: 'queued', wait: true })).toMatchObject({ __typename: 'SeatQueued', position: 1 });
    expect(ok(await s.gql(RELEASE, { input: { leaseId: holder.id, key: lic.key } })).releaseSeat.status).toBe('RELEASED');
    // The queue's head gets the seat on its next checkout, with the key it queued with.
    const seated = await checkout({ key: lic.key, fingerprint: 'dev-c', idempotencyKey: 'queued', wait: true });
    expect(seated).toMatchObject({ __typename: 'SeatLease', status: 'ACTIVE' });
    expect(await checkout({ key: lic.key, fingerprint: 'dev-c', idempotencyKey: 'queued', wait: true })).toEqual(seated);
  });

  it('bad keys are ValidationErrors that change nothing; a key is forgotten after its retention', async () => {
    const lic = await floating(2);
    for (const bad of ['', 'x'.repeat(256), 'nul\u0000']) {
      const r = await checkout({ key: lic.key, fingerprint: 'dev-a', idempotencyKey: bad });
      expect(r.__typename).toBe('ValidationError');
      expect(r.fields[0].path).toBe('idempotencyKey');
    }
    expect(await leases(lic)).toBe(0);

    const first = await checkout({ key: lic.key, fingerprint: 'dev-a', idempotencyKey: 'day-old' });
    expect(first.__typename).toBe('SeatLease');
    // Past the retention the record is gone, and the key is free for a new request.
    await expireIdempotencyRecords(s.app.deps, new Date(Date.now() + 1000));
    const next = await checkout({ key: lic.key, fingerprint: 'dev-b', idempotencyKey: 'day-old' });
    expect(next).toMatchObject({ __typename: 'SeatLease' });
    expect(next.id).not.toBe(first.id);
  });
});
