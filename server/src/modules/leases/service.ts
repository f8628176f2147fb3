import { createHash, randomUUID } from 'node:crypto';
import { type Lease, Prisma } from '@tessera/db/client';
import { z } from 'zod';
import type { AppDeps } from '../../context.ts';
import { ConflictError, LicensingError, NotFoundError, ValidationError } from '../../errors.ts';
import { sealerOf } from '../audit/chain.ts';
import { actorOf, type EventInput, inTransaction, type ServiceContext, type Tx } from '../audit/service.ts';
import type { EventType } from '../audit/event-types.ts';
import { retriedOnDeadlock } from '../common/db.ts';
import { parseId } from '../common/ids.ts';
import { tenantWhere } from '../common/tenancy.ts';
import { parse } from '../common/validate.ts';
import { notExpiredSql } from '../licenses/service.ts';
import { signerFor, TOKEN_TYPES } from '../signing/service.ts';
import { DEFAULT_LEASE_SECONDS, type LicenseTerms, seatCheckoutBatcher, seatsOf, withinSeats } from './batched.ts';
import { assertUsable, clientActor, isDuplicate, type KeyTarget, keyTarget, utcDay } from './client.ts';

/** The longest a lease can be borrowed for offline use, unless the license's metadata sets `maxBorrowSeconds`. */
export const DEFAULT_MAX_BORROW_SECONDS = 7 * 86_400;

const clientString = z.string().trim().min(1, 'must not be empty').max(256, 'must be at most 256 characters');
const checkoutInput = z.object({
  key: z.string(),
  fingerprint: clientString,
  user: clientString.nullish(),
  department: z.string().trim().min(1, 'must not be empty').max(128, 'must be at most 128 characters').nullish(),
  idempotencyKey: z.string().min(1, 'must not be empty').max(255, 'must be at most 255 characters').nullish(),
  wait: z.boolean().nullish(),
});
export type CheckoutInput = z.input<typeof checkoutInput>;
export interface LeaseRef {
  leaseId: string;
  key: string;
}

export interface GrantedLease {
  kind: 'lease';
  lease: Lease;
  token: string;
}
export interface QueuedSeat {
  kind: 'queued';
  position: number;
  expiresAt: Date;
}

function leaseEvent(type: EventType, lease: Pick<Lease, 'id' | 'licenseId' | 'holder' | 'expiresAt'>, actor: { type: string; id: string | null } = clientActor(lease.licenseId)): EventInput {
  return {
    type,
    subjectType: 'Lease',
    subjectId: lease.id,
    licenseId: lease.licenseId,
    payload: { holder: lease.holder, expiresAt: lease.expiresAt.toISOString() },
    actor,
  };
}

/** Where a checkout's statements run: the client, or the transaction of a keyed checkout. */
type Db = Pick<Tx, '$queryRaw'>;

async function signLease(app: AppDeps, lease: Lease, issuedAt?: Date): Promise<string> {
  return signerFor(app).sign(
    lease.tenantId,
    TOKEN_TYPES.lease,
    {
      sub: lease.id,
      license: lease.licenseId,
      fingerprint: lease.fingerprint,
      ...(lease.user ? { user: lease.user } : {}),
      status: lease.status,
      borrowed: lease.borrowed,
    },
    lease.status === 'ACTIVE' ? lease.expiresAt : (lease.endedAt ?? lease.expiresAt),
    issuedAt,
  );
}

/** An audit row, as the SELECT list of an INSERT INTO "AuditEvent" fed by a statement's own CTEs. */
const AUDIT_COLUMNS = Prisma.sql`INSERT INTO "AuditEvent" ("tenantId", type, "actorType", "actorId", "subjectType", "subjectId", "licenseId", payload, "requestId")`;

function leasePayload(alias: string) {
  return Prisma.raw(
    `jsonb_build_object('holder', ${alias}.holder, 'expiresAt', to_char(${alias}."expiresAt", 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))`,
  );
}

/** The answer to a holder whose lease was ended for being beyond its license's (lowered) seats. */
function beyondSeats(): LicensingError {
  return new LicensingError('LEASE_EXPIRED', "The license's floating seats were reduced and this lease is beyond them; it has ended: check out a seat again");
}

interface GrantOutcome {
  lease: Lease | null;
  renewed: boolean;
  granted: boolean;
  ahead: number;
  queued: number;
  inQueue: boolean;
  /** The license still had the terms the caller applied, as read under its lock: else nothing was written. */
  current: boolean;
  /** The license as read under its lock (null: no such license). */
  license: LicenseTerms | null;
}

/**
 * Grants a floating seat in two statements, neither holding a lock across round trips:
 * 1. reclaims this license's lapsed leases (giving their seats back to the SeatPool counter, with
 *    lease.expired audit rows) and reads the license terms;
 * 2. reads the license again under a share lock and, while its terms are still those the rules were
 *    applied to, renews the holder's live lease, or else grants through a conditional UPDATE of the
 *    SeatPool row (used + owed-to-the-queue < seats, on the latest versions of both rows) and inserts
 *    the lease and its lease.granted audit row in the same statement. A license suspended or changed
 *    between the two goes back to the rules with the row the second read.
 * Concurrent checkouts on any number of instances can therefore never exceed `seats`; the unique
 * (license, active holder) index makes one device or user hold one lease (a racing duplicate fails
 * its statement, undoing its increment, and is answered by renewal).
 */
export async function checkoutSeat(ctx: ServiceContext, raw: CheckoutInput): Promise<GrantedLease | QueuedSeat> {
  const input = parse(checkoutInput, raw);
  const target = await keyTarget(ctx.prisma, input.key);
  // A call with an idempotency key is decided on the one-call path, in a transaction with its record.
  if (input.idempotencyKey) return checkoutOnce(ctx, input, input.idempotencyKey, target);
  const { licenseId, tenantId } = target;
  const now = new Date();

  // The common case (a seat free, nothing to reclaim, nobody queued) is one batched statement.
  const lease = await seatCheckoutBatcher(ctx.app)({
    id: randomUUID(),
    tenantId,
    licenseId,
    fingerprint: input.fingerprint,
    user: input.user ?? null,
    department: input.department ?? null,
    requestId: ctx.requestId,
  });
  if (lease) return { kind: 'lease', lease, token: await signLease(ctx.app, lease) };

  const lic = await reclaimLapsed(ctx, target, now, { fingerprint: input.fingerprint, user: input.user ?? null });
  let decided: Decided;
  try {
    decided = await decideCheckout(ctx, ctx.prisma, input, target, lic, now);
  } catch (err) {
    // The same holder was granted a lease by a concurrent checkout: this one renews it.
    if (!isDuplicate(err)) throw err;
    decided = await decideCheckout(ctx, ctx.prisma, input, target, lic, now);
  }
  return answer(ctx, tenantId, decided);
}

/** A checkout decided: a lease, a place in the queue (`placed`: a new one, with its seat.queued event), or no seat. */
type Decided = { kind: 'lease'; lease: Lease } | { kind: 'queued'; seat: QueuedSeat; placed: boolean } | { kind: 'refused' };

/** Seals the audit rows a decision wrote (once committed) and answers with it (NO_SEATS_AVAILABLE for a refusal). */
async function answer(ctx: ServiceContext, tenantId: string, decided: Decided, issuedAt?: Date): Promise<GrantedLease | QueuedSeat> {
  if (decided.kind === 'refused') throw new LicensingError('NO_SEATS_AVAILABLE', 'All floating seats are in use');
  if (decided.kind === 'queued') {
    if (decided.placed) void sealerOf(ctx.app).seal(tenantId);
    return decided.seat;
  }
  void sealerOf(ctx.app).seal(tenantId);
  return { kind: 'lease', lease: decided.lease, token: await signLease(ctx.app, decided.lease, issuedAt) };
}

/**
 * Reclaims this license's lapsed leases, and the caller's own lease when it is beyond the license's
 * seats (lowered under it, see withinSeats: a checkout by its holder must not renew it), and reads the
 * license's terms. One statement on its own: aborted to break a deadlock (with a checkout batch
 * inserting a lease for a holder whose lapsed lease this expires, or a sweep), it changed nothing and
 * runs again.
 */
async function reclaimLapsed(ctx: ServiceContext, { licenseId, tenantId }: KeyTarget, now: Date, caller: { fingerprint: string; user: string | null }): Promise<LicenseTerms> {
  const at = `'${now.toISOString()}'::timestamp(3)`;
  const [lic] = await retriedOnDeadlock(() => ctx.prisma.$queryRaw<(LicenseTerms & { expired: number })[]>`
    WITH lic AS (
      SELECT state, "startsAt", "expiresAt", provisioning, "clientType", seats, "leaseSeconds", type, "gracePeriodSeconds" FROM "License" WHERE id = ${licenseId}::uuid
    ), expired AS (
      UPDATE "Lease" SET status = 'EXPIRED', "activeHolder" = NULL, "endedAt" = ${now}::timestamp(3)
      WHERE id IN (
        SELECT id FROM "Lease" WHERE "licenseId" = ${licenseId}::uuid AND status = 'ACTIVE' AND "expiresAt" <= ${now}::timestamp(3)
        FOR UPDATE SKIP LOCKED
      )
      RETURNING id, "tenantId", "licenseId", holder, "expiresAt"
    ), beyond AS (
      -- The caller's live lease, when the license (still serving seats) has fewer seats than leases ahead of it.
      SELECT l.id, ${Prisma.raw(seatsOf('lic'))} AS seats FROM "Lease" l, lic
      WHERE l."licenseId" = ${licenseId}::uuid AND l."activeHolder" = CASE WHEN lic."clientType" = 'USERS' THEN ${caller.user}::text ELSE ${caller.fingerprint} END
        AND l.status = 'ACTIVE' AND l."expiresAt" > ${now}::timestamp(3)
        AND lic.state = 'ACTIVE' AND ${Prisma.raw(notExpiredSql('lic', at))} AND (lic."startsAt" IS NULL OR lic."startsAt" <= ${now}::timestamp(3))
        AND NOT ${Prisma.raw(withinSeats('l', seatsOf('lic'), `(SELECT p.used FROM "SeatPool" p WHERE p."licenseId" = l."licenseId")`, at))}
    ), excess AS (
      UPDATE "Lease" l SET status = 'EXPIRED', "activeHolder" = NULL, "endedAt" = ${now}::timestamp(3)
      FROM beyond WHERE l.id = beyond.id AND l.status = 'ACTIVE' AND l."expiresAt" > ${now}::timestamp(3)
      RETURNING l.id, l."tenantId", l."licenseId", l.holder, l."expiresAt", beyond.seats
    ), freed AS (
      -- The counter counts every lease it granted until that lease ends, whatever the license's
      -- provisioning is now (a license moved to NAMED and back must find it right).
      UPDATE "SeatPool" SET used = used - (SELECT count(*)::int FROM expired) - (SELECT count(*)::int FROM excess)
      WHERE "licenseId" = ${licenseId}::uuid AND (EXISTS (SELECT 1 FROM expired) OR EXISTS (SELECT 1 FROM excess))
    ), pool AS (
      INSERT INTO "SeatPool" ("licenseId", "tenantId", used, granted)
      SELECT ${licenseId}::uuid, ${tenantId}::uuid, 0, false FROM lic WHERE lic.provisioning = 'FLOATING'
      ON CONFLICT ("licenseId") DO NOTHING
    ), stale AS (
      DELETE FROM "SeatQueueEntry" WHERE "licenseId" = ${licenseId}::uuid AND "expiresAt" <= ${now}::timestamp(3)
    ), audit AS (
      ${AUDIT_COLUMNS}
      SELECT e."tenantId", 'lease.expired', 'system', NULL, 'Lease', e.id::text, e."licenseId", ${leasePayload('e')}, ${ctx.requestId} FROM expired e
      UNION ALL
      SELECT e."tenantId", 'lease.expired', 'system', NULL, 'Lease', e.id::text, e."licenseId",
        ${leasePayload('e')} || jsonb_build_object('reason', 'seats_reduced', 'seats', e.seats), ${ctx.requestId} FROM excess e
    )
    SELECT lic.*, (SELECT count(*)::int FROM expired) + (SELECT count(*)::int FROM excess) AS expired FROM lic`);
  if (!lic) throw new LicensingError('LICENSE_NOT_FOUND', 'No license has this key');
  if (lic.expired > 0) void sealerOf(ctx.app).seal(tenantId);
  const { expired: _, ...terms } = lic;
  return terms;
}

/**
 * The rules, then the grant or renewal (renewOrGrant) on `db` (the client, or a transaction's), and a
 * place in the queue or a refusal when no seat is free. Throws a unique violation when a concurrent
 * checkout granted the same holder a lease meanwhile (the caller decides again: it renews).
 */
async function decideCheckout(
  ctx: ServiceContext,
  db: Db,
  input: z.output<typeof checkoutInput>,
  { licenseId, tenantId }: KeyTarget,
  lic: LicenseTerms,
  now: Date,
  record?: GrantArgs['record'],
): Promise<Decided> {
  let terms = lic;
  let grant: GrantArgs;
  let outcome: GrantOutcome;
  for (let attempt = 1; ; attempt++) {
    const { holder, expiresAt } = seatRules(terms, input, now);
    grant = { licenseId, tenantId, holder, fingerprint: input.fingerprint, user: input.user ?? null, department: input.department ?? null, clientType: terms.clientType, leaseSeconds: terms.leaseSeconds, wait: !!input.wait, now, expiresAt, record };
    outcome = await renewOrGrant(ctx, db, grant);
    if (outcome.current) break;
    // The license changed after the rules read it (suspended, revoked, other terms): nothing was written,
    // and the rules apply again to the row as the grant read it under its lock.
    if (!outcome.license) throw new LicensingError('LICENSE_NOT_FOUND', 'No license has this key');
    if (attempt >= 3) throw new Error(`license ${licenseId}: its terms changed during each of ${attempt} checkout attempts`);
    terms = outcome.license;
  }
  if (outcome.lease) return { kind: 'lease', lease: outcome.lease };
  if (!input.wait) return { kind: 'refused' };
  return enqueue(ctx, db, { licenseId, tenantId, holder: grant.holder, fingerprint: input.fingerprint, user: input.user ?? null, now, expiresAt: grant.expiresAt });
}

/** Checkout idempotency keys count per license, as activation's and usage tickets' do. */
const idempotencyScope = (licenseId: string) => `checkout:${licenseId}`;

/** What the record of a keyed checkout keeps: the lease as answered and when its token was signed. */
interface StoredCheckout {
  lease: Record<string, unknown>;
  issuedAt: string;
}

/**
 * A checkout with an idempotency key (Stripe semantics, as activation): the first call's lease is the
 * answer to every call with this key and these parameters, and changes nothing again; other parameters
 * are IDEMPOTENCY_KEY_REUSED. The key's record is inserted by the statement that grants or renews the
 * lease, without ON CONFLICT: a concurrent call with the same key (on any instance) that took it first
 * fails this statement (its lease undone, nothing written) once it commits, and this call replays its
 * answer. A refusal or a place in the queue keeps no record: the call is decided afresh when it comes
 * again (a queued client polls with the key it queued with).
 */
async function checkoutOnce(ctx: ServiceContext, input: z.output<typeof checkoutInput>, key: string, target: KeyTarget): Promise<GrantedLease | QueuedSeat> {
  const { licenseId, tenantId } = target;
  const scope = idempotencyScope(licenseId);
  const hash = createHash('sha256')
    .update(JSON.stringify([input.fingerprint, input.user ?? null, input.department ?? null, !!input.wait]))
    .digest('hex');
  const replay = async (): Promise<GrantedLease | null> => {
    const prior = await ctx.prisma.idempotencyRecord.findUnique({ where: { tenantId_scope_key: { tenantId, scope, key } } });
    if (!prior) return null;
    if (prior.requestHash !== hash) throw new LicensingError('IDEMPOTENCY_KEY_REUSED', 'This idempotency key was used with different parameters');
    const stored = prior.response as unknown as StoredCheckout;
    const lease = leaseFromJson(stored.lease);
    return { kind: 'lease', lease, token: await signLease(ctx.app, lease, new Date(stored.issuedAt)) };
  };
  for (let attempt = 1; ; attempt++) {
    const prior = await replay();
    if (prior) return prior;
    const now = new Date();
    const lic = await reclaimLapsed(ctx, target, now, { fingerprint: input.fingerprint, user: input.user ?? null });
    try {
      const decided = await decideCheckout(ctx, ctx.prisma, input, target, lic, now, { scope, key, hash });
      // No seat: unless a concurrent call with this key was granted one meanwhile, which answers for it.
      if (decided.kind !== 'lease') return (await replay()) ?? (await answer(ctx, tenantId, decided));
      return await answer(ctx, tenantId, decided, now);
    } catch (err) {
      // The key was taken by a concurrent call (replayed above), or the holder granted a lease by one (renewed).
      if (!isDuplicate(err) || attempt >= 3) throw err;
    }
  }
}

/** The license's rules for a checkout, in order: state, floating seats, who holds the seat; and the lease's expiry. */
function seatRules(lic: LicenseTerms, input: z.output<typeof checkoutInput>, now: Date): { holder: string; expiresAt: Date } {
  assertUsable(lic, now);
  if (lic.provisioning !== 'FLOATING' || !lic.seats) {
    throw new LicensingError('NO_SEATS_AVAILABLE', 'This license has no floating seats');
  }
  const holder = lic.clientType === 'USERS' ? input.user : input.fingerprint;
  if (!holder) throw ValidationError.field('user', 'is required: this license counts seats per user');
  const seconds = lic.leaseSeconds ?? DEFAULT_LEASE_SECONDS;
  return { holder, expiresAt: new Date(now.getTime() + seconds * 1000) };
}

interface GrantArgs {
  licenseId: string;
  tenantId: string;
  holder: string;
  fingerprint: string;
  user: string | null;
  department: string | null;
  /** The terms the holder and expiry were derived from: the grant goes ahead only while the license still has them. */
  clientType: string;
  leaseSeconds: number | null;
  wait: boolean;
  now: Date;
  expiresAt: Date;
  /** A keyed checkout's idempotency record, written with the lease it answers with (see checkoutOnce). */
  record?: { scope: string; key: string; hash: string };
}

const LICENSE_TERMS = Prisma.raw(
  `state, "startsAt", "expiresAt", provisioning, "clientType", seats, "leaseSeconds", type, "gracePeriodSeconds"`,
);

/**
 * Renews the holder's lease or grants one, deciding on the License row read under a share lock in the
 * same statement (`lk`): it waits for a suspension, revocation or change of terms in progress (each
 * holds the row's lock until it commits) and reads the row as that change left it, so the seats counted
 * against are the license's seats now and a license that stopped serving seats grants and renews nothing.
 * `current` is false when the license is no longer usable as seatRules judges it (state, dates, grace,
 * FLOATING with seats) or no longer has the terms the caller applied; `license` is then that row.
 */
async function renewOrGrant(ctx: ServiceContext, db: Db, a: GrantArgs): Promise<GrantOutcome> {
  const actorId = a.licenseId;
  const day = utcDay(a.now);
  const at = `'${a.now.toISOString()}'::timestamp(3)`;
  const [row] = await db.$queryRaw<(Omit<GrantOutcome, 'lease' | 'license'> & { lease: Record<string, unknown> | null; license: LicenseTerms | null })[]>`
    WITH lk AS (
      SELECT ${LICENSE_TERMS},
        state = 'ACTIVE' AND provisioning = 'FLOATING' AND seats > 0 AND ${Prisma.raw(notExpiredSql('"License"', at))}
          AND ("startsAt" IS NULL OR "startsAt" <= ${a.now}::timestamp(3))
          AND "clientType"::text = ${a.clientType} AND "leaseSeconds" IS NOT DISTINCT FROM ${a.leaseSeconds}::int AS ok
      FROM "License" WHERE id = ${a.licenseId}::uuid
      FOR SHARE
    ), renewed AS (
      UPDATE "Lease" SET "expiresAt" = GREATEST("expiresAt", ${a.expiresAt}::timestamp(3)), "renewedAt" = ${a.now}::timestamp(3), fingerprint = ${a.fingerprint},
        department = COALESCE(${a.department}, department)
      WHERE "licenseId" = ${a.licenseId}::uuid AND "activeHolder" = ${a.holder} AND status = 'ACTIVE' AND "expiresAt" > ${a.now}::timestamp(3)
        AND (SELECT ok FROM lk)
      RETURNING *
    ), q AS (
      SELECT id, holder, "enqueuedAt" FROM "SeatQueueEntry" WHERE "licenseId" = ${a.licenseId}::uuid AND "expiresAt" > ${a.now}::timestamp(3)
    ), me AS (
      SELECT id, "enqueuedAt" FROM q WHERE holder = ${a.holder}
    ), owed AS (
      -- Queued clients come first, in order: a newcomer needs a seat beyond those the queue is owed.
      SELECT (SELECT count(*)::int FROM q) AS queued,
        (SELECT count(*)::int FROM q, me WHERE (q."enqueuedAt", q.id) < (me."enqueuedAt", me.id)) AS ahead,
        EXISTS (SELECT 1 FROM me) AS "inQueue"
    ), pool AS (
      UPDATE "SeatPool" SET
        used = used + CASE WHEN used + (SELECT CASE WHEN "inQueue" THEN ahead ELSE queued END FROM owed) < (SELECT seats FROM lk) THEN 1 ELSE 0 END,
        granted = used + (SELECT CASE WHEN "inQueue" THEN ahead ELSE queued END FROM owed) < (SELECT seats FROM lk)
      WHERE "licenseId" = ${a.licenseId}::uuid AND NOT EXISTS (SELECT 1 FROM renewed) AND (SELECT ok FROM lk)
      RETURNING used, granted
    ), granted AS (
      INSERT INTO "Lease" (id, "tenantId", "licenseId", holder, fingerprint, "user", department, status, borrowed, "grantedAt", "renewedAt", "expiresAt", "activeHolder")
      SELECT ${randomUUID()}::uuid, ${a.tenantId}::uuid, ${a.licenseId}::uuid, ${a.holder}, ${a.fingerprint}, ${a.user}, ${a.department}, 'ACTIVE', false,
        ${a.now}::timestamp(3), ${a.now}::timestamp(3), ${a.expiresAt}::timestamp(3), ${a.holder}
      FROM pool WHERE pool.granted
      RETURNING *
    ), dequeued AS (
      DELETE FROM "SeatQueueEntry" WHERE "licenseId" = ${a.licenseId}::uuid AND holder = ${a.holder}
        AND (EXISTS (SELECT 1 FROM granted) OR EXISTS (SELECT 1 FROM renewed))
    ), stats AS (
      INSERT INTO "SeatUsageDay" ("licenseId", day, "tenantId", peak, granted, denials)
      SELECT ${a.licenseId}::uuid, ${day}, ${a.tenantId}::uuid, pool.used, CASE WHEN pool.granted THEN 1 ELSE 0 END, CASE WHEN pool.granted THEN 0 ELSE 1 END
      FROM pool WHERE pool.granted OR NOT ${a.wait}
      ON CONFLICT ("licenseId", day) DO UPDATE SET peak = GREATEST("SeatUsageDay".peak, EXCLUDED.peak),
        granted = "SeatUsageDay".granted + EXCLUDED.granted, denials = "SeatUsageDay".denials + EXCLUDED.denials
    ), audit AS (
      ${AUDIT_COLUMNS}
      SELECT l."tenantId", 'lease.granted', 'client', ${actorId}, 'Lease', l.id::text, l."licenseId", ${leasePayload('l')}, ${ctx.requestId} FROM granted l
      UNION ALL
      SELECT l."tenantId", 'lease.renewed', 'client', ${actorId}, 'Lease', l.id::text, l."licenseId", ${leasePayload('l')}, ${ctx.requestId} FROM renewed l
    )${a.record ? Prisma.sql`, idempotency AS (
      -- No ON CONFLICT: a key a concurrent call holds (committed once this waits for it) fails the statement, undoing its lease.
      INSERT INTO "IdempotencyRecord" ("tenantId", scope, key, "requestHash", response, "createdAt")
      SELECT ${a.tenantId}::uuid, ${a.record.scope}, ${a.record.key}, ${a.record.hash},
        jsonb_build_object('lease', to_jsonb(l), 'issuedAt', ${a.now.toISOString()}::text), ${a.now}::timestamp(3)
      FROM (SELECT * FROM granted UNION ALL SELECT * FROM renewed) l
    )` : Prisma.empty}
    SELECT
      COALESCE((SELECT row_to_json(granted) FROM granted), (SELECT row_to_json(renewed) FROM renewed)) AS lease,
      EXISTS (SELECT 1 FROM renewed) AS renewed,
      COALESCE((SELECT granted FROM pool), false) AS granted,
      owed.ahead, owed.queued, owed."inQueue",
      COALESCE((SELECT ok FROM lk), false) AS "current",
      (SELECT row_to_json(lk) FROM lk) AS license
    FROM owed`;
  const r = row!;
  return { ...r, lease: r.lease ? leaseFromJson(r.lease) : null, license: r.license ? termsFromJson(r.license) : null };
}

function termsFromJson(j: LicenseTerms): LicenseTerms {
  const date = (v: unknown) => (v === null || v === undefined ? null : new Date(`${String(v)}Z`));
  return { ...j, startsAt: date(j.startsAt), expiresAt: date(j.expiresAt) };
}

/** row_to_json gives timestamps as text without a zone (they are UTC). */
function leaseFromJson(j: Record<string, unknown>): Lease {
  const date = (v: unknown) => (v === null || v === undefined ? null : new Date(`${String(v)}Z`));
  return {
    ...(j as unknown as Lease),
    grantedAt: date(j.grantedAt)!,
    renewedAt: date(j.renewedAt)!,
    expiresAt: date(j.expiresAt)!,
    endedAt: date(j.endedAt),
  };
}

/** Puts (or keeps) the client in the seat queue; a new place emits seat.queued. */
async function enqueue(
  ctx: ServiceContext,
  db: Db,
  a: { licenseId: string; tenantId: string; holder: string; fingerprint: string; user: string | null; now: Date; expiresAt: Date },
): Promise<Decided> {
  const [row] = await db.$queryRaw<{ position: number; inserted: boolean }[]>`
    WITH entry AS (
      INSERT INTO "SeatQueueEntry" (id, "tenantId", "licenseId", holder, fingerprint, "user", "enqueuedAt", "expiresAt")
      VALUES (${randomUUID()}::uuid, ${a.tenantId}::uuid, ${a.licenseId}::uuid, ${a.holder}, ${a.fingerprint}, ${a.user}, ${a.now}::timestamp(3), ${a.expiresAt}::timestamp(3))
      ON CONFLICT ("licenseId", holder) DO UPDATE SET "expiresAt" = EXCLUDED."expiresAt"
      RETURNING id, "enqueuedAt", (xmax = 0) AS inserted
    ), audit AS (
      ${AUDIT_COLUMNS}
      SELECT ${a.tenantId}::uuid, 'seat.queued', 'client', ${a.licenseId}, 'SeatQueueEntry', entry.id::text, ${a.licenseId}::uuid,
        jsonb_build_object('holder', ${a.holder}::text), ${ctx.requestId}
      FROM entry WHERE entry.inserted
    )
    SELECT entry.inserted,
      (SELECT count(*)::int FROM "SeatQueueEntry" q WHERE q."licenseId" = ${a.licenseId}::uuid AND q."expiresAt" > ${a.now}::timestamp(3)
        AND (q."enqueuedAt", q.id) < (entry."enqueuedAt", entry.id)) + 1 AS position
    FROM entry`;
  return { kind: 'queued', seat: { kind: 'queued', position: row!.position, expiresAt: a.expiresAt }, placed: row!.inserted };
}

/** A lease of the license this key names; anything else (unknown, another license's) is LEASE_NOT_FOUND. */
async function leaseOf(ctx: ServiceContext, ref: LeaseRef) {
  const leaseId = parseLeaseId(ref.leaseId);
  const target = await keyTarget(ctx.prisma, ref.key);
  return { leaseId, ...target };
}

function parseLeaseId(value: string): string {
  try {
    return parseId(value, 'Lease', 'leaseId');
  } catch {
    throw new LicensingError('LEASE_NOT_FOUND', 'No such lease for this license');
  }
}

/**
 * Why a renewal, release or borrow found nothing to change: checked only on that failure path. When the
 * license is usable and the lease still live, `whenLive` (given the license's metadata) may say why.
 */
async function explainMiss(ctx: ServiceContext, leaseId: string, licenseId: string, now: Date, whenLive?: (metadata: unknown) => void): Promise<never> {
  const [lease, license] = await Promise.all([
    ctx.prisma.lease.findFirst({ where: { id: leaseId, licenseId } }),
    ctx.prisma.license.findUnique({ where: { id: licenseId }, select: { state: true, startsAt: true, expiresAt: true, type: true, gracePeriodSeconds: true, metadata: true } }),
  ]);
  if (license) assertUsable(license, now);
  // Taken back by an operator: like a lease that ran out, the holder may check out again.
  if (lease?.status === 'RELEASED' && lease.releasedBy) throw new LicensingError('LEASE_EXPIRED', 'An administrator released this seat; check out a seat again');
  if (!lease || lease.status === 'RELEASED') throw new LicensingError('LEASE_NOT_FOUND', 'No such lease for this license');
  if (license && lease.status === 'ACTIVE' && lease.expiresAt.getTime() > now.getTime()) whenLive?.(license.metadata);
  throw new LicensingError('LEASE_EXPIRED', 'The lease has expired; check out a seat again');
}

/**
 * Extends a live lease by the license's lease period: one statement that also checks the license is
 * usable and writes lease.renewed. A lease beyond the license's seats (they were lowered under it, see
 * withinSeats) is not renewed: the same statement ends it (EXPIRED, its seat given back to the counter,
 * a lease.expired audit row with reason "seats_reduced") and the holder gets LEASE_EXPIRED, the answer
 * to any lease that ended without its holder releasing it (a later heartbeat or release of it gets the
 * same), which tells the client to check out again: that is then refused (NO_SEATS_AVAILABLE) or queued
 * until a seat within the new count is free. NO_SEATS_AVAILABLE is the answer to a checkout, about a
 * seat not granted; here a granted lease ends. Aborted to break a deadlock (with a checkout by the same
 * holder) it changed nothing, and runs again.
 */
export async function heartbeatSeat(ctx: ServiceContext, ref: LeaseRef): Promise<GrantedLease> {
  const { leaseId, licenseId, tenantId } = await leaseOf(ctx, ref);
  const now = new Date();
  const at = `'${now.toISOString()}'::timestamp(3)`;
  const [lease] = await retriedOnDeadlock(() => ctx.prisma.$queryRaw<(Lease & { ended: boolean })[]>`
    WITH lic AS (
      SELECT id, "leaseSeconds", ${Prisma.raw(seatsOf('"License"'))} AS seats FROM "License"
      WHERE id = ${licenseId}::uuid AND state = 'ACTIVE' AND ${Prisma.raw(notExpiredSql('"License"', at))}
        AND ("startsAt" IS NULL OR "startsAt" <= ${now}::timestamp(3))
    ), target AS (
      SELECT l.id, ${Prisma.raw(withinSeats('l', 'lic.seats', `(SELECT p.used FROM "SeatPool" p WHERE p."licenseId" = lic.id)`, at))} AS within
      FROM "Lease" l JOIN lic ON lic.id = l."licenseId"
      WHERE l.id = ${leaseId}::uuid AND l.status = 'ACTIVE' AND l."expiresAt" > ${now}::timestamp(3)
    ), renewed AS (
      UPDATE "Lease" l SET
        "expiresAt" = GREATEST(l."expiresAt", ${now}::timestamp(3) + COALESCE(lic."leaseSeconds", ${DEFAULT_LEASE_SECONDS}) * interval '1 second'),
        "renewedAt" = ${now}::timestamp(3)
      FROM target, lic
      WHERE l.id = target.id AND target.within AND l.status = 'ACTIVE' AND l."expiresAt" > ${now}::timestamp(3)
      RETURNING l.*
    ), ended AS (
      UPDATE "Lease" l SET status = 'EXPIRED', "activeHolder" = NULL, "endedAt" = ${now}::timestamp(3)
      FROM target
      WHERE l.id = target.id AND NOT target.within AND l.status = 'ACTIVE' AND l."expiresAt" > ${now}::timestamp(3)
      RETURNING l.*
    ), pool AS (
      UPDATE "SeatPool" SET used = used - 1 WHERE "licenseId" = ${licenseId}::uuid AND EXISTS (SELECT 1 FROM ended) RETURNING used
    ), audit AS (
      ${AUDIT_COLUMNS}
      SELECT l."tenantId", 'lease.renewed', 'client', ${licenseId}, 'Lease', l.id::text, l."licenseId", ${leasePayload('l')}, ${ctx.requestId} FROM renewed l
      UNION ALL
      SELECT l."tenantId", 'lease.expired', 'system', NULL, 'Lease', l.id::text, l."licenseId",
        ${leasePayload('l')} || jsonb_build_object('reason', 'seats_reduced', 'seats', lic.seats), ${ctx.requestId}
      FROM ended l, lic
      UNION ALL
      -- Ending a lease beyond the seats frees no seat, unless others ended meanwhile: the queue hears only of one.
      SELECT l."tenantId", 'seat.available', 'system', NULL, 'License', ${licenseId}, l."licenseId", jsonb_build_object('seats', lic.seats - pool.used), ${ctx.requestId}
      FROM ended l, lic, pool
      WHERE pool.used < lic.seats
        AND EXISTS (SELECT 1 FROM "SeatQueueEntry" q WHERE q."licenseId" = ${licenseId}::uuid AND q."expiresAt" > ${now}::timestamp(3))
    )
    SELECT *, false AS ended FROM renewed UNION ALL SELECT *, true AS ended FROM ended`);
  if (!lease) return explainMiss(ctx, leaseId, licenseId, now);
  void sealerOf(ctx.app).seal(tenantId);
  if (lease.ended) throw beyondSeats();
  const { ended: _, ...renewed } = lease;
  return { kind: 'lease', lease: renewed, token: await signLease(ctx.app, renewed) };
}

/**
 * Frees the seat at once (and its SeatPool count, in the same statement); a waiting queue hears
 * seat.available. Aborted to break a deadlock (with a checkout by the same holder, whose new lease waits
 * on the holder this clears while holding the counter) it changed nothing, and runs again.
 */
export async function releaseSeat(ctx: ServiceContext, ref: LeaseRef): Promise<GrantedLease> {
  const { leaseId, licenseId, tenantId } = await leaseOf(ctx, ref);
  const now = new Date();
  const row = await endLease(ctx, now, Prisma.sql`id = ${leaseId}::uuid AND "licenseId" = ${licenseId}::uuid`, clientActor(licenseId), null);
  if (!row) return explainMiss(ctx, leaseId, licenseId, now);
  void sealerOf(ctx.app).seal(tenantId);
  return { kind: 'lease', lease: row, token: await signLease(ctx.app, row) };
}

/**
 * An operator frees a floating seat before its lease ends (a crashed client, a user who left with the
 * app open), as FlexNet's lmremove: the seat is free at once, the queue hears seat.available, and the
 * holder's next heartbeat or release gets LEASE_EXPIRED, telling it to check out again. A borrowed seat
 * is not taken back: its holder is offline with a token valid until the lease ends, so freeing the seat
 * would let one more run than the license allows.
 */
export async function releaseLeaseByOperator(ctx: ServiceContext, leaseId: string): Promise<string> {
  const { tenantId } = tenantWhere(ctx.actor);
  const actor = actorOf(ctx.actor);
  const now = new Date();
  const row = await endLease(
    ctx,
    now,
    Prisma.sql`id = ${leaseId}::uuid AND "tenantId" = ${tenantId}::uuid AND NOT borrowed`,
    actor,
    actor.id ? `${actor.type}:${actor.id}` : actor.type,
  );
  if (row) {
    void sealerOf(ctx.app).seal(tenantId);
    return row.id;
  }
  const lease = await ctx.prisma.lease.findFirst({ where: { id: leaseId, tenantId }, select: { status: true, borrowed: true, expiresAt: true } });
  if (!lease) throw new NotFoundError('lease');
  if (lease.status !== 'ACTIVE' || lease.expiresAt.getTime() <= now.getTime()) throw new ConflictError('this lease has already ended, its seat is free');
  throw new ConflictError(`this seat is borrowed for offline use until ${lease.expiresAt.toISOString()}; it is free once its holder returns it or the borrow ends`);
}

/**
 * Ends the live lease `which` selects as RELEASED, gives its seat back to the counter and writes
 * lease.released (and seat.available for a queue with a seat now free for it), in one statement.
 * `releasedBy` is null when the holder released it itself.
 */
async function endLease(ctx: ServiceContext, now: Date, which: Prisma.Sql, actor: { type: string; id: string | null }, releasedBy: string | null): Promise<Lease | undefined> {
  const [row] = await retriedOnDeadlock(() => ctx.prisma.$queryRaw<Lease[]>`
    WITH released AS (
      UPDATE "Lease" SET status = 'RELEASED', "activeHolder" = NULL, "endedAt" = ${now}::timestamp(3), "releasedBy" = ${releasedBy}
      WHERE ${which} AND status = 'ACTIVE' AND "expiresAt" > ${now}::timestamp(3)
      RETURNING *
    ), pool AS (
      UPDATE "SeatPool" SET used = used - 1 WHERE "licenseId" IN (SELECT "licenseId" FROM released) RETURNING used
    ), waiting AS (
      -- A queue to tell, and a seat free for it: not so while the license holds more leases than its (lowered) seats.
      SELECT EXISTS (SELECT 1 FROM "SeatQueueEntry" q, released r WHERE q."licenseId" = r."licenseId" AND q."expiresAt" > ${now}::timestamp(3))
        AND (SELECT used FROM pool) < (SELECT ${Prisma.raw(seatsOf('lic'))} FROM "License" lic, released r WHERE lic.id = r."licenseId") AS yes
    ), audit AS (
      ${AUDIT_COLUMNS}
      SELECT l."tenantId", 'lease.released', ${actor.type}, ${actor.id}, 'Lease', l.id::text, l."licenseId",
        ${leasePayload('l')} || ${releasedBy ? Prisma.sql`jsonb_build_object('reason', 'released_by_operator')` : Prisma.sql`'{}'::jsonb`}, ${ctx.requestId}
      FROM released l
      UNION ALL
      SELECT l."tenantId", 'seat.available', ${actor.type}, ${actor.id}, 'License', l."licenseId"::text, l."licenseId", jsonb_build_object('seats', 1), ${ctx.requestId}
      FROM released l, waiting WHERE waiting.yes
    )
    SELECT * FROM released`);
  return row;
}

const borrowInput = z.object({
  leaseId: z.string(),
  key: z.string(),
  seconds: z.number().int('must be an integer').min(60, 'must be at least 60').max(31_536_000, 'must be at most 365 days'),
});

/** The longest borrow a license's metadata can set (as borrowSeat's `seconds`, and the metadata's rule). */
const MAX_BORROW_SECONDS = 31_536_000;

/**
 * The license's maximum borrow period, as borrowSeat's statement (MAX_BORROW_SQL) reads it from the
 * metadata: a number (or a string of digits) of seconds, within 0 and a year; anything else, which only
 * rows written before the metadata rule can hold, leaves the default.
 */
function maxBorrowSeconds(metadata: unknown): number {
  const set = (metadata as { maxBorrowSeconds?: unknown } | null)?.maxBorrowSeconds;
  const n = typeof set === 'number' ? set : typeof set === 'string' && /^\s*\d+\s*$/.test(set) ? Number(set) : null;
  return n === null || !Number.isFinite(n) ? DEFAULT_MAX_BORROW_SECONDS : Math.min(Math.max(Math.floor(n), 0), MAX_BORROW_SECONDS);
}

const MAX_BORROW_SQL = Prisma.raw(`CASE
  WHEN jsonb_typeof(metadata->'maxBorrowSeconds') = 'number'
    THEN LEAST(GREATEST(floor((metadata->>'maxBorrowSeconds')::numeric), 0), ${MAX_BORROW_SECONDS})::int
  WHEN jsonb_typeof(metadata->'maxBorrowSeconds') = 'string' AND metadata->>'maxBorrowSeconds' ~ '^\\s*[0-9]+\\s*$'
    THEN LEAST(trim(metadata->>'maxBorrowSeconds')::numeric, ${MAX_BORROW_SECONDS})::int
  ELSE ${DEFAULT_MAX_BORROW_SECONDS} END`);

/**
 * Borrows a live lease for offline use: it stays a held seat, without heartbeats, until `seconds` from
 * now (at most the license's maximum borrow period) or until it is released (returned). A borrow is
 * held offline, where no later call can refuse it, so it ends at the latest when the license stops
 * serving seats: at its expiry, or for a subscription at the end of its grace period, during which its
 * seats are still served (as heartbeatSeat and checkoutSeat serve them) and may be borrowed.
 */
export async function borrowSeat(ctx: ServiceContext, raw: z.input<typeof borrowInput>): Promise<GrantedLease> {
  const input = parse(borrowInput, raw);
  const { leaseId, licenseId, tenantId } = await leaseOf(ctx, input);
  const now = new Date();
  const at = `'${now.toISOString()}'::timestamp(3)`;
  const lease = await inTransaction(ctx, tenantId, async (tx, emit) => {
    // The license as it is now (a share lock waits for a suspension or change in progress).
    const [row] = await tx.$queryRaw<(Lease & { maxBorrow: number })[]>`
      WITH lic AS (
        SELECT id, ${MAX_BORROW_SQL} AS "maxBorrow", ${Prisma.raw(seatsOf('"License"'))} AS seats,
          CASE WHEN type = 'SUBSCRIPTION' THEN "expiresAt" + make_interval(secs => COALESCE("gracePeriodSeconds", 0)) ELSE "expiresAt" END AS "servesUntil"
        FROM "License"
        WHERE id = ${licenseId}::uuid AND state = 'ACTIVE' AND ${Prisma.raw(notExpiredSql('"License"', at))}
          AND ("startsAt" IS NULL OR "startsAt" <= ${now}::timestamp(3))
        FOR SHARE
      )
      UPDATE "Lease" l SET borrowed = true, "renewedAt" = ${now}::timestamp(3),
        "expiresAt" = LEAST(${now}::timestamp(3) + LEAST(${input.seconds}, lic."maxBorrow") * interval '1 second', lic."servesUntil")
      FROM lic
      WHERE l.id = ${leaseId}::uuid AND l."licenseId" = lic.id AND l.status = 'ACTIVE' AND l."expiresAt" > ${now}::timestamp(3)
        AND lic."maxBorrow" > 0
        -- A lease beyond seats lowered under it is not renewed, so not borrowed either (offline, nothing could recall it).
        AND ${Prisma.raw(withinSeats('l', 'lic.seats', `(SELECT p.used FROM "SeatPool" p WHERE p."licenseId" = lic.id)`, at))}
      RETURNING l.*, lic."maxBorrow"`;
    if (!row) return undefined;
    const { maxBorrow, ...lease } = row;
    emit({ ...leaseEvent('lease.borrowed', lease, clientActor(licenseId)), payload: { holder: lease.holder, expiresAt: lease.expiresAt.toISOString(), requestedSeconds: input.seconds, maxBorrowSeconds: maxBorrow } });
    return lease;
  });
  if (!lease) {
    const [beyond] = await ctx.prisma.$queryRaw<{ beyond: boolean }[]>`
      SELECT NOT ${Prisma.raw(withinSeats('l', seatsOf('lic'), `(SELECT p.used FROM "SeatPool" p WHERE p."licenseId" = lic.id)`, at))} AS beyond
        FROM "Lease" l JOIN "License" lic ON lic.id = l."licenseId"
       WHERE l.id = ${leaseId}::uuid AND l."licenseId" = ${licenseId}::uuid AND l.status = 'ACTIVE' AND l."expiresAt" > ${now}::timestamp(3)`;
    return explainMiss(ctx, leaseId, licenseId, now, (metadata) => {
      // Its next heartbeat ends it (see heartbeatSeat); until then it is held, but not for longer.
      if (beyond?.beyond) throw new LicensingError('LEASE_EXPIRED', "The license's floating seats were reduced and this lease is beyond them: it cannot be borrowed; check out a seat again");
      // A license whose maximum borrow period is 0 allows no borrowing. The lease is live, so LEASE_EXPIRED
      // ("check out a seat again") would send the client round in a loop, and no LicensingErrorCode of the
      // contract means "not allowed for this license" for a seat (OFFLINE_ACTIVATION_NOT_ALLOWED is about
      // activating by a request file). `seconds` is documented as capped at the maximum borrow period;
      // with a maximum of 0 no duration it accepts can be honoured, so it is the input that is refused,
      // as a ValidationError, the member this union already returns for a duration out of range.
      if (maxBorrowSeconds(metadata) <= 0) throw ValidationError.field('seconds', 'this license allows no borrowing (its maximum borrow period is 0)');
    });
  }
  return { kind: 'lease', lease, token: await signLease(ctx.app, lease) };
}

/**
 * Where a queued client stands; null when it is not (or no longer) queued. Polling keeps the place, as
 * checking out again does: the entry is held for another lease period from now.
 */
export async function seatQueuePosition(ctx: ServiceContext, raw: CheckoutInput): Promise<QueuedSeat | null> {
  const input = parse(checkoutInput, raw);
  const { licenseId } = await keyTarget(ctx.prisma, input.key);
  const now = new Date();
  const [row] = await ctx.prisma.$queryRaw<{ ahead: number; expiresAt: Date }[]>`
    WITH me AS (
      UPDATE "SeatQueueEntry" q
         SET "expiresAt" = GREATEST(q."expiresAt", ${now}::timestamp(3) + make_interval(secs => COALESCE(l."leaseSeconds", ${DEFAULT_LEASE_SECONDS})))
        FROM "License" l
       WHERE l.id = q."licenseId" AND q."licenseId" = ${licenseId}::uuid AND q."expiresAt" > ${now}::timestamp(3)
         AND q.holder = CASE WHEN l."clientType" = 'USERS' THEN ${input.user ?? ''} ELSE ${input.fingerprint} END
      RETURNING q.id, q."enqueuedAt", q."expiresAt"
    )
    SELECT me."expiresAt",
      (SELECT count(*)::int FROM "SeatQueueEntry" q WHERE q."licenseId" = ${licenseId}::uuid AND q."expiresAt" > ${now}::timestamp(3)
        AND (q."enqueuedAt", q.id) < (me."enqueuedAt", me.id)) AS ahead
    FROM me`;
  return row ? { kind: 'queued', position: row.ahead + 1, expiresAt: row.expiresAt } : null;
}

/**
 * Expires lapsed leases (of every tenant) and drops stale queue entries. Each batch is one statement:
 * an UPDATE over rows claimed with FOR UPDATE SKIP LOCKED, so N instances sweeping at once expire each
 * lease once, and in the same statement the audit rows (lease.expired per lease, seat.available per
 * license with a queue), which commit with the change; they are sealed and published right after.
 * The SeatPool counters are locked in licenseId order before they are decremented, the order checkouts
 * lock them in (an UPDATE joined to the counts would take them in hash order, and deadlock with a
 * checkout batch). Each statement runs on the raw channel, which runs again a statement PostgreSQL
 * aborted to break a deadlock (with a party that takes the rows in another order): it changed nothing.
 */
export async function sweepLeases(app: AppDeps, now = new Date(), batch = 10_000): Promise<number> {
  const at = now.toISOString();
  await app.db.sql.query(`DELETE FROM "SeatQueueEntry" WHERE "expiresAt" <= $1::timestamp(3)`, [at]);
  let total = 0;
  const tenants = new Set<string>();
  for (;;) {
    const rows = await app.db.sql.query<{ tenantId: string; n: number }>(SWEEP_LEASES, [at, batch]);
    for (const r of rows) tenants.add(r.tenantId);
    const swept = rows.reduce((sum, r) => sum + r.n, 0);
    total += swept;
    // A short batch means nothing is left, or another instance holds the rest (SKIP LOCKED) and will finish it.
    if (swept < batch) break;
  }
  // Chained once the sweep is done, not between its batches (on PGlite they would share its one connection).
  for (const tenantId of tenants) void sealerOf(app).seal(tenantId);
  return total;
}

const SWEEP_LEASES = `
  WITH expired AS (
    UPDATE "Lease" SET status = 'EXPIRED', "activeHolder" = NULL, "endedAt" = $1::timestamp(3)
    WHERE id IN (
      SELECT id FROM "Lease" WHERE status = 'ACTIVE' AND "expiresAt" <= $1::timestamp(3)
      LIMIT $2 FOR UPDATE SKIP LOCKED
    )
    RETURNING id, "tenantId", "licenseId", holder, "expiresAt"
  ), counts AS (
    SELECT "licenseId", count(*)::int AS n FROM expired GROUP BY 1
  ), locked AS (
    SELECT p."licenseId" FROM "SeatPool" p WHERE p."licenseId" IN (SELECT "licenseId" FROM counts)
     ORDER BY p."licenseId"
       FOR UPDATE
  ), pool AS (
    -- Only rows \`locked\` holds already: every wait for a counter is there, in key order.
    UPDATE "SeatPool" p SET used = p.used - counts.n FROM counts JOIN locked ON locked."licenseId" = counts."licenseId"
     WHERE p."licenseId" = counts."licenseId"
    RETURNING p."licenseId", p.used
  ), freed AS (
    -- Seats free for a queue: none while a license still holds more leases than its (lowered) seats.
    SELECT e."tenantId", e."licenseId", LEAST(count(*)::int, min(${seatsOf('lic')}) - min(pool.used)) AS seats
      FROM expired e JOIN pool ON pool."licenseId" = e."licenseId" JOIN "License" lic ON lic.id = e."licenseId"
     WHERE EXISTS (SELECT 1 FROM "SeatQueueEntry" q WHERE q."licenseId" = e."licenseId" AND q."expiresAt" > $1::timestamp(3))
       AND pool.used < ${seatsOf('lic')}
     GROUP BY 1, 2
  ), audit AS (
    INSERT INTO "AuditEvent" ("tenantId", type, "actorType", "actorId", "subjectType", "subjectId", "licenseId", payload, "requestId")
    SELECT "tenantId", 'lease.expired', 'system', NULL, 'Lease', id::text, "licenseId",
      jsonb_build_object('holder', holder, 'expiresAt', to_char("expiresAt", 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')), 'lease-sweep'
    FROM expired
    UNION ALL
    SELECT "tenantId", 'seat.available', 'system', NULL, 'License', "licenseId"::text, "licenseId", jsonb_build_object('seats', seats), 'lease-sweep'
    FROM freed
  )
  SELECT "tenantId"::text AS "tenantId", count(*)::int AS n FROM expired GROUP BY 1`;
