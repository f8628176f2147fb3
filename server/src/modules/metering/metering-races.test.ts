import { randomUUID } from 'node:crypto';
import type { UsageTicket } from '@tessera/db/client';
import type { JSONWebKeySet } from 'jose';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient } from '../../../../sdk/src/client.ts';
import { memoryStorage } from '../../../../sdk/src/storage.ts';
import { buildApp, type App } from '../../app.ts';
import { loadConfig } from '../../config.ts';
import { freshPostgres, ok, startTestServer, testDatabaseUrl, testEnv, type TestServer } from '../../../test/harness.ts';
import { waitForLockWaiters } from '../../../test/locks.ts';
import { type Issued, issueLicense } from '../leases/fixtures.ts';
import { usageLookupBatcher, usageWriteBatcher } from './batched.ts';
import { sweepTickets } from './service.ts';

/**
 * Usage metering under concurrency, as found in review: each test here failed before its fix. The ones
 * that need a second connection holding a row lock (a license change, a sweep or an import racing a
 * use) run on PostgreSQL only: PGlite has one connection, so nothing can wait for a lock there.
 */

let s: TestServer;
let token: string;
let slug: string;
let tenantId: string;
/** A second instance on the same database: it has read no license's meter terms yet. */
let cold: App;
/** On PostgreSQL, the database's URL: the lock tests open connections of their own to it. */
let fresh: Awaited<ReturnType<typeof freshPostgres>> | undefined;
beforeAll(async () => {
  fresh = testDatabaseUrl ? await freshPostgres(testDatabaseUrl) : undefined;
  s = await startTestServer({ databaseUrl: fresh?.url });
  ({ token, slug, id: tenantId } = await s.tenant());
  cold = await buildApp({ config: { ...loadConfig(testEnv), seedDemo: false }, db: s.db });
});
afterAll(async () => {
  await cold?.stop();
  await s?.close();
  await fresh?.drop();
});

type Op = 'recordUsage' | 'authorizeUsage';
type Instance = 'known' | 'cold';
interface Use {
  op?: Op;
  key: string;
  meter?: string;
  quantity: number;
  idempotencyKey?: string;
  via?: Instance;
}

const USE = (op: Op) => `mutation($input: AuthorizeUsageInput!) { ${op}(input: $input) {
  __typename ... on UsageTicket { id status quantity remaining } ... on LicensingError { code } ... on ValidationError { message } } }`;
const UPDATE_LICENSE = `mutation($input: UpdateLicenseInput!) { updateLicense(input: $input) { __typename ... on Error { message } } }`;
const SUSPEND = `mutation($id: ID!) { suspendLicense(input: { licenseId: $id }) { __typename ... on Error { message } } }`;
const IMPORT = `mutation($file: String!) { importOfflineDeactivation(input: { file: $file }) {
  __typename ... on ImportOfflineDeactivationPayload { imported activation { status } } ... on Error { message } } }`;

let n = 0;
const idem = () => `race-${++n}-${Math.random().toString(36).slice(2)}`;

async function coldGql(query: string, variables: Record<string, unknown>) {
  const res = await cold.yoga.fetch('http://tessera.test/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query, variables }),
  });
  return (await res.json()) as { data: any; errors?: unknown[] };
}

/** A use through this instance (`known`: it has read the license's terms before, if a use was made) or a cold one. */
async function use({ op = 'recordUsage', key, meter = 'm', quantity, idempotencyKey = idem(), via = 'known' }: Use) {
  const variables = { input: { key, meter, quantity, idempotencyKey } };
  const r = via === 'known' ? await s.gql(USE(op), variables) : await coldGql(USE(op), variables);
  return (ok(r as never) as Record<Op, unknown>)[op] as { __typename: string; id?: string; remaining?: number; quantity?: number; code?: string };
}

const metered = (meters: { meter: string; quota: number; period?: string }[], terms: Record<string, unknown> = {}): Promise<Issued> =>
  issueLicense(s, token, { ...terms, meters: meters.map((m) => ({ period: 'NONE', ...m })) }, { meters: meters.map((m) => m.meter) });

const balance = (licenseId: string, meter = 'm') => s.db.prisma.usageBalance.findFirst({ where: { licenseId, meter } });
const dbId = (globalId: string) => Buffer.from(globalId, 'base64').toString().split(':')[1]!;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A license whose balance row exists and whose terms this instance knows: its use goes first in inOneStatement. */
interface Gate {
  licenseId: string;
  use(): Promise<unknown>;
}
async function gateLicense(): Promise<Gate> {
  const g = await metered([{ meter: 'm', quota: 1_000_000 }]);
  await use({ key: g.key, quantity: 1 });
  return { licenseId: g.id, use: () => use({ key: g.key, quantity: 1 }) };
}

/**
 * Runs `calls` so that they share one statement: one usage statement of a kind is in flight per
 * instance, so while the gate's use is held, the calls queue behind it and then go together. On
 * PostgreSQL a second connection holds the gate license's balance row; on PGlite (one connection) a
 * transaction holds the database.
 */
async function inOneStatement<T>(gate: Gate, calls: () => Promise<T>): Promise<T> {
  if (fresh) {
    const conn = new pg.Client({ connectionString: fresh.url });
    await conn.connect();
    try {
      await conn.query('BEGIN');
      await conn.query(`SELECT 1 FROM "UsageBalance" WHERE "licenseId" = $1 FOR UPDATE`, [gate.licenseId]);
      const first = gate.use();
      await waitForLockWaiters(conn, 1);
      const pending = calls();
      await sleep(500);
      await conn.query('COMMIT');
      await first;
      return await pending;
    } finally {
      await conn.end();
    }
  }
  let release!: () => void;
  const held = s.db.pglite!.transaction(() => new Promise<void>((resolve) => (release = resolve)));
  const first = gate.use();
  await sleep(100);
  const pending = calls();
  await sleep(500);
  release();
  await held;
  await first;
  return pending;
}

describe('one idempotency key twice at once', () => {
  it.each(['recordUsage', 'authorizeUsage'] as const)('%s with a tight quota answers the same ticket twice, on the first use and with known terms', async (op) => {
    for (let round = 0; round < 3; round++) {
      // First use of the license: no terms read yet, no balance row.
      const first = await metered([{ meter: 'm', quota: 5 }]);
      const key = idem();
      const [a, b] = await Promise.all([use({ op, key: first.key, quantity: 5, idempotencyKey: key }), use({ op, key: first.key, quantity: 5, idempotencyKey: key })]);
      expect(a).toMatchObject({ __typename: 'UsageTicket', quantity: 5, remaining: 0 });
      expect(b).toEqual(a);
    }

    // Terms read before: both calls in one statement.
    const known = await metered([{ meter: 'm', quota: 6 }]);
    expect(await use({ op, key: known.key, quantity: 1 })).toMatchObject({ remaining: 5 });
    const gate = await gateLicense();
    const key = idem();
    const [c, d] = await inOneStatement(gate, () =>
      Promise.all([use({ op, key: known.key, quantity: 5, idempotencyKey: key }), use({ op, key: known.key, quantity: 5, idempotencyKey: key })]),
    );
    expect(c).toMatchObject({ __typename: 'UsageTicket', quantity: 5, remaining: 0 });
    expect(d).toEqual(c);
    const row = await balance(known.id);
    expect(row!.used + row!.reserved).toBe(6);
    expect(await s.db.prisma.usageTicket.count({ where: { licenseId: known.id } })).toBe(2);
  });
});

describe('remaining, when a duplicate key shares the statement', () => {
  it('counts only what was written (uses on known terms)', async () => {
    const lic = await metered([{ meter: 'm', quota: 100 }]);
    expect(await use({ key: lic.key, quantity: 1 })).toMatchObject({ remaining: 99 });
    const gate = await gateLicense();
    const key = idem();
    const [d1, d2, other] = await inOneStatement(gate, async () => {
      const dups = [use({ key: lic.key, quantity: 5, idempotencyKey: key }), use({ key: lic.key, quantity: 5, idempotencyKey: key })];
      // The key twice first in the statement, then another use: its remaining is where this went wrong.
      await sleep(100);
      return Promise.all([...dups, use({ key: lic.key, quantity: 1 })]);
    });
    expect(d1).toMatchObject({ __typename: 'UsageTicket', remaining: 94 });
    expect(d2).toEqual(d1);
    expect(other).toMatchObject({ __typename: 'UsageTicket', remaining: 93 });
    const stored = await s.db.prisma.usageTicket.findUniqueOrThrow({ where: { id: dbId(other!.id!) } });
    expect(stored.remaining).toBe(93);
    const event = await s.db.prisma.auditEvent.findFirstOrThrow({ where: { subjectId: stored.id, type: 'usage.recorded' } });
    expect(event.payload).toMatchObject({ remaining: 93 });
    expect(await balance(lic.id)).toMatchObject({ used: 7, reserved: 0 });
  });

  it('counts only what was written (the batched write after the rules)', async () => {
    // Its calls are given to the statement directly: through the API, a use's lookup makes the terms
    // known, and the uses after it take the other statement.
    const lic = await metered([{ meter: 'm', quota: 100 }]);
    expect(await use({ key: lic.key, quantity: 1 })).toMatchObject({ remaining: 99 });
    const { terms } = (await usageLookupBatcher(s.app.deps)({ licenseId: lic.id, idempotencyKey: idem() }))!;
    const now = new Date();
    const ticket = (idempotencyKey: string, quantity: number): UsageTicket => ({
      id: randomUUID(), tenantId, licenseId: lic.id, meter: 'm', window: 'all', fingerprint: null, idempotencyKey, requestHash: 'h', quantity,
      committed: quantity, status: 'COMMITTED', remaining: null, receipt: 'r', expiresAt: null, createdAt: now, endedAt: now,
    });
    const write = (t: UsageTicket) => usageWriteBatcher(s.app.deps)({ ticket: t, quota: 100, type: 'usage.recorded', requestId: 'test', terms });
    const key = idem();
    const [d1, d2, other] = await Promise.all([write(ticket(key, 5)), write(ticket(key, 5)), write(ticket(idem(), 1))]);
    expect(d1).toMatchObject({ remaining: 94 });
    // Left to the one-call path, which replays d1.
    expect(d2).toBeNull();
    expect(other).toMatchObject({ remaining: 93 });
    const event = await s.db.prisma.auditEvent.findFirstOrThrow({ where: { subjectId: (other as UsageTicket).id, type: 'usage.recorded' } });
    expect(event.payload).toMatchObject({ remaining: 93 });
    expect(await balance(lic.id)).toMatchObject({ used: 7, reserved: 0 });
  });
});

describe.skipIf(!testDatabaseUrl)('row locks held by another transaction (PostgreSQL)', () => {
  let conn: pg.Client;
  let third: pg.Client;
  beforeAll(async () => {
    conn = new pg.Client({ connectionString: fresh!.url });
    third = new pg.Client({ connectionString: fresh!.url });
    await Promise.all([conn.connect(), third.connect()]);
  });
  afterAll(() => Promise.all([conn?.end(), third?.end()]));

  /** A license on each path a use can take: terms known here, terms not read on the cold instance, no balance row yet. */
  const PATHS: [string, Instance, boolean][] = [
    ['with known terms', 'known', true],
    ['on a cold instance', 'cold', true],
    ['on the first use', 'known', false],
  ];

  it.each(PATHS)('a use waiting on its license row while the license is suspended is refused with LICENSE_SUSPENDED (%s)', async (_, via, warm) => {
    const lic = await metered([{ meter: 'm', quota: 100 }]);
    if (warm) await use({ key: lic.key, quantity: 2 });
    await conn.query('BEGIN');
    await conn.query(`UPDATE "License" SET state = 'SUSPENDED', "suspendedAt" = now() WHERE id = $1`, [lic.id]);
    const pending = use({ key: lic.key, quantity: 1, via });
    try {
      await waitForLockWaiters(conn, 1);
    } finally {
      await conn.query('COMMIT');
    }
    expect(await pending).toMatchObject({ code: 'LICENSE_SUSPENDED' });
    expect((await balance(lic.id))?.used ?? 0).toBe(warm ? 2 : 0);
  });

  it.each(PATHS)('a use waiting on its license row while the quota is lowered is refused with QUOTA_EXCEEDED (%s)', async (_, via, warm) => {
    const lic = await metered([{ meter: 'm', quota: 100 }]);
    if (warm) await use({ key: lic.key, quantity: 10 });
    await conn.query('BEGIN');
    await conn.query(`UPDATE "License" SET meters = '[{"meter":"m","quota":20,"period":"NONE"}]'::jsonb, revision = revision + 1 WHERE id = $1`, [lic.id]);
    const pending = use({ key: lic.key, quantity: 50, via });
    try {
      await waitForLockWaiters(conn, 1);
    } finally {
      await conn.query('COMMIT');
    }
    expect(await pending).toMatchObject({ code: 'QUOTA_EXCEEDED' });
    if (warm) expect(await balance(lic.id)).toMatchObject({ used: 10, quota: 100 });
    else expect(await balance(lic.id)).toBeNull();
    // The next use counts against the new quota, and writes it.
    expect(await use({ key: lic.key, quantity: 5, via })).toMatchObject({ __typename: 'UsageTicket', remaining: warm ? 5 : 15 });
    expect(await balance(lic.id)).toMatchObject({ quota: 20 });
  });

  it.each(PATHS.filter(([, , warm]) => warm))('a license change waits for the use in flight; no use counts after it (%s)', async (_, via) => {
    const lic = await metered([{ meter: 'm', quota: 100 }]);
    await use({ key: lic.key, quantity: 10 });
    const held = async <T,>(change: () => Promise<T>) => {
      await conn.query('BEGIN');
      await conn.query(`SELECT 1 FROM "UsageBalance" WHERE "licenseId" = $1 FOR UPDATE`, [lic.id]);
      const pending = use({ key: lic.key, quantity: 50, via });
      let changed: Promise<T> | undefined;
      try {
        await waitForLockWaiters(conn, 1);
        changed = change();
        // The change waits for the use, which holds the license row.
        await waitForLockWaiters(conn, 2);
      } finally {
        await conn.query('COMMIT');
      }
      return [await pending, await changed] as const;
    };

    const [recorded, lowered] = await held(async () => ok(await s.gql(UPDATE_LICENSE, { input: { licenseId: lic.globalId, meters: [{ meter: 'm', quota: 20, period: 'NONE' }] } }, { token })));
    expect(recorded).toMatchObject({ __typename: 'UsageTicket', remaining: 40 });
    expect(lowered.updateLicense.__typename).toBe('License');
    expect(await use({ key: lic.key, quantity: 1, via })).toMatchObject({ code: 'QUOTA_EXCEEDED' });

    ok(await s.gql(UPDATE_LICENSE, { input: { licenseId: lic.globalId, meters: [{ meter: 'm', quota: 200, period: 'NONE' }] } }, { token }));
    const [second, suspended] = await held(async () => ok(await s.gql(SUSPEND, { id: lic.globalId }, { token })));
    expect(second).toMatchObject({ __typename: 'UsageTicket', remaining: 90 });
    expect(suspended.suspendLicense.__typename).toBe('License');
    expect(await use({ key: lic.key, quantity: 1, via })).toMatchObject({ code: 'LICENSE_SUSPENDED' });
    const events = await s.db.prisma.auditEvent.findMany({ where: { licenseId: lic.id, type: { in: ['usage.recorded', 'license.suspended'] } }, orderBy: { id: 'asc' } });
    expect(events.map((e) => e.type).at(-1)).toBe('license.suspended');
    expect(await balance(lic.id)).toMatchObject({ used: 110 });
  });

  /** A license with meters `codes`, each with an expired reservation of 1; the balance rows are written in the reverse of key order. */
  async function expiredReservations(codes: string[]) {
    const lic = await metered(codes.map((meter) => ({ meter, quota: 100 })));
    for (const meter of [...codes].reverse()) expect(await use({ op: 'authorizeUsage', key: lic.key, meter, quantity: 1 })).toMatchObject({ __typename: 'UsageTicket' });
    await s.db.prisma.usageTicket.updateMany({ where: { licenseId: lic.id }, data: { expiresAt: new Date(Date.now() - 1000) } });
    const { rows } = await conn.query<{ meter: string }>(`SELECT meter FROM "UsageBalance" WHERE "licenseId" = $1 ORDER BY "licenseId", meter, "window"`, [lic.id]);
    return { lic, ordered: rows.map((r) => r.meter) };
  }
  const lockBalance = (c: pg.Client, licenseId: string, meter: string, nowait = false) =>
    c.query(`SELECT 1 FROM "UsageBalance" WHERE "licenseId" = $1 AND meter = $2 FOR UPDATE${nowait ? ' NOWAIT' : ''}`, [licenseId, meter]);

  it('the ticket sweep locks balance rows in key order: waiting for one, it holds none after it', async () => {
    const { lic, ordered } = await expiredReservations(['s1', 's2', 's3', 's4', 's5', 's6']);
    await conn.query('BEGIN');
    await lockBalance(conn, lic.id, ordered[0]!);
    const swept = sweepTickets(s.app.deps);
    await waitForLockWaiters(conn, 1);
    try {
      for (const meter of ordered.slice(1)) {
        await third.query('BEGIN');
        await lockBalance(third, lic.id, meter, true);
        await third.query('ROLLBACK');
      }
    } finally {
      await third.query('ROLLBACK');
      await conn.query('COMMIT');
    }
    expect(await swept).toBeGreaterThanOrEqual(6);
    expect(await s.db.prisma.usageTicket.count({ where: { licenseId: lic.id, status: 'EXPIRED' } })).toBe(6);
    expect(await s.db.prisma.usageBalance.aggregate({ where: { licenseId: lic.id }, _sum: { reserved: true } })).toMatchObject({ _sum: { reserved: 0 } });
  });

  it('a ticket sweep caught in a deadlock runs again instead of failing', async () => {
    const { lic, ordered } = await expiredReservations(['d1', 'd2']);
    // The other party holds the second row and, later, asks for the first: against the order the sweep
    // locks them in. It never checks for the deadlock itself (a long deadlock_timeout), so the sweep is aborted.
    await conn.query(`SET deadlock_timeout = '10s'`);
    try {
      await conn.query('BEGIN');
      await lockBalance(conn, lic.id, ordered[1]!);
      const swept = sweepTickets(s.app.deps);
      await waitForLockWaiters(conn, 1);
      await lockBalance(conn, lic.id, ordered[0]!);
      await conn.query('COMMIT');
      expect(await swept).toBeGreaterThanOrEqual(2);
    } finally {
      await conn.query('ROLLBACK');
      await conn.query('RESET deadlock_timeout');
    }
    expect(await s.db.prisma.usageTicket.count({ where: { licenseId: lic.id, status: 'EXPIRED' } })).toBe(2);
    expect(await s.db.prisma.usageBalance.aggregate({ where: { licenseId: lic.id }, _sum: { reserved: true } })).toMatchObject({ _sum: { reserved: 0 } });
  });

  /** An offline device of a license with meters a and z whose deactivation file reports z first, then a; both balance rows exist. */
  async function offlineDevice() {
    const lic = await metered([{ meter: 'a', quota: 1000 }, { meter: 'z', quota: 1000 }], { maxActivations: 2, deploymentMode: 'HYBRID', allowOffline: true });
    for (const meter of ['a', 'z']) await use({ key: lic.key, meter, quantity: 1 });
    const jwks = (await (await s.fetch(`/.well-known/jwks.json?tenant=${slug}`)).json()) as JSONWebKeySet;
    const device = createClient({
      endpoint: 'http://127.0.0.1:9/graphql',
      tenant: slug,
      publicKeys: jwks,
      storage: memoryStorage(),
      device: { fingerprint: `air-${idem()}`, components: [{ kind: 'MACHINE_ID', value: idem() }] },
    });
    const issued = ok(
      await s.gql(
        `mutation($input: IssueOfflineLicenseInput!) { issueOfflineLicense(input: $input) { __typename ... on OfflineLicensePayload { licenseFile } ... on Error { message } } }`,
        { input: { licenseId: lic.globalId, request: await device.createActivationRequest(lic.key) } },
        { token },
      ),
    ).issueOfflineLicense;
    expect(issued.__typename).toBe('OfflineLicensePayload');
    await device.installLicenseFile(issued.licenseFile);
    await device.recordOfflineUsage('z', 30);
    await device.recordOfflineUsage('a', 20);
    return { lic, file: await device.createDeactivationFile() };
  }
  const importFile = async (file: string) => s.gql(IMPORT, { file }, { token });
  const importedOnce = async (licenseId: string) => {
    expect(await balance(licenseId, 'a')).toMatchObject({ used: 21 });
    expect(await balance(licenseId, 'z')).toMatchObject({ used: 31 });
    expect(await s.db.prisma.usageLedgerEntry.count({ where: { licenseId } })).toBe(4);
    expect(await s.db.prisma.license.findUniqueOrThrow({ where: { id: licenseId } })).toMatchObject({ activationsUsed: 0 });
  };

  it('an offline deactivation import writes balance rows in key order, whatever the file order', async () => {
    const { lic, file } = await offlineDevice();
    await conn.query('BEGIN');
    await lockBalance(conn, lic.id, 'a');
    const imported = importFile(file);
    await waitForLockWaiters(conn, 1);
    try {
      // Waiting for a, the import holds nothing after it.
      await lockBalance(conn, lic.id, 'z', true);
    } finally {
      await conn.query('COMMIT');
    }
    expect(ok(await imported).importOfflineDeactivation).toMatchObject({ imported: true, activation: { status: 'RELEASED' } });
    await importedOnce(lic.id);
  });

  it('an offline deactivation import caught in a deadlock runs again, once', async () => {
    const { lic, file } = await offlineDevice();
    await conn.query(`SET deadlock_timeout = '10s'`);
    try {
      await conn.query('BEGIN');
      await lockBalance(conn, lic.id, 'z');
      const imported = importFile(file);
      await waitForLockWaiters(conn, 1);
      await lockBalance(conn, lic.id, 'a');
      await conn.query('COMMIT');
      expect(ok(await imported).importOfflineDeactivation).toMatchObject({ imported: true, activation: { status: 'RELEASED' } });
    } finally {
      await conn.query('ROLLBACK');
      await conn.query('RESET deadlock_timeout');
    }
    await importedOnce(lic.id);
    expect(ok(await importFile(file)).importOfflineDeactivation).toMatchObject({ imported: false });
    await importedOnce(lic.id);
  });
});
