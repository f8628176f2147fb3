import { randomUUID } from 'node:crypto';
import type { Lease } from '@tessera/db/client';
import { z } from 'zod';
import type { AppDeps } from '../../context.ts';
import { LicensingError, ValidationError } from '../../errors.ts';
import { type EventInput, inTransaction, type ServiceContext, type Tx } from '../audit/service.ts';
import { parseId } from '../common/ids.ts';
import { parse } from '../common/validate.ts';
import { signerFor, TOKEN_TYPES } from '../signing/service.ts';
import { assertUsable, clientActor, keyTarget, utcDay } from './client.ts';

/** Used when a FLOATING license sets no leaseSeconds. */
export const DEFAULT_LEASE_SECONDS = 300;
/** The longest a lease can be borrowed for offline use, unless the license's metadata sets `maxBorrowSeconds`. */
export const DEFAULT_MAX_BORROW_SECONDS = 7 * 86_400;

const SYSTEM: { type: string; id: string | null } = { type: 'system', id: null };

const clientString = z.string().trim().min(1, 'must not be empty').max(256, 'must be at most 256 characters');
const checkoutInput = z.object({
  key: z.string(),
  fingerprint: clientString,
  user: clientString.nullish(),
  idempotencyKey: z.string().max(255, 'must be at most 255 characters').nullish(),
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

interface LockedLicense {
  state: string;
  startsAt: Date | null;
  expiresAt: Date | null;
  provisioning: string;
  clientType: string;
  seats: number | null;
  leaseSeconds: number | null;
}

interface SeatState {
  expired: { id: string; holder: string }[];
  live: number;
  mine: string | null;
  queued: number;
  ahead: number;
  inQueue: boolean;
}

function leaseEvent(type: string, lease: Pick<Lease, 'id' | 'licenseId' | 'holder' | 'expiresAt'>, actor: { type: string; id: string | null } = clientActor(lease.licenseId)): EventInput {
  return {
    type,
    subjectType: 'Lease',
    subjectId: lease.id,
    licenseId: lease.licenseId,
    payload: { holder: lease.holder, expiresAt: lease.expiresAt.toISOString() },
    actor,
  };
}

async function signLease(app: AppDeps, lease: Lease): Promise<string> {
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
  );
}

/**
 * Grants a floating seat. The license row is locked for the few statements that count live leases and
 * insert, so concurrent checkouts (on any instance) can never exceed `seats`. Expired leases are
 * reclaimed here first, so they never block a seat while waiting for the sweep.
 */
export async function checkoutSeat(ctx: ServiceContext, raw: CheckoutInput): Promise<GrantedLease | QueuedSeat> {
  const input = parse(checkoutInput, raw);
  const { licenseId, tenantId } = await keyTarget(ctx.prisma, input.key);
  const now = new Date();
  const actor = clientActor(licenseId);

  const outcome = await inTransaction(ctx, tenantId, async (tx, emit) => {
    const [lic] = await tx.$queryRaw<LockedLicense[]>`
      SELECT state, "startsAt", "expiresAt", provisioning, "clientType", seats, "leaseSeconds"
      FROM "License" WHERE id = ${licenseId}::uuid FOR UPDATE`;
    if (!lic) throw new LicensingError('LICENSE_NOT_FOUND', 'No license has this key');
    assertUsable(lic, now);
    if (lic.provisioning !== 'FLOATING' || !lic.seats) {
      throw new LicensingError('NO_SEATS_AVAILABLE', 'This license has no floating seats');
    }
    const holder = lic.clientType === 'USERS' ? input.user : input.fingerprint;
    if (!holder) throw ValidationError.field('user', 'is required: this license counts seats per user');
    const seconds = lic.leaseSeconds ?? DEFAULT_LEASE_SECONDS;
    const expiresAt = new Date(now.getTime() + seconds * 1000);

    const state = await seatState(tx, licenseId, holder, now);
    for (const e of state.expired) emit(leaseEvent('lease.expired', { ...e, licenseId, expiresAt: now }, SYSTEM));

    if (state.mine) {
      // The same device or user holds one seat: renew it (a borrowed lease keeps its longer term).
      const [lease] = await tx.$queryRaw<Lease[]>`
        UPDATE "Lease" SET "expiresAt" = GREATEST("expiresAt", ${expiresAt}::timestamp(3)), "renewedAt" = ${now}::timestamp(3),
          fingerprint = ${input.fingerprint}
        WHERE id = ${state.mine}::uuid RETURNING *`;
      if (state.inQueue) await tx.$executeRaw`DELETE FROM "SeatQueueEntry" WHERE "licenseId" = ${licenseId}::uuid AND holder = ${holder}`;
      emit(leaseEvent('lease.renewed', lease!, actor));
      return { kind: 'lease' as const, lease: lease! };
    }

    // Queued clients come first, in order: a newcomer needs a seat beyond those the queue is owed.
    const free = lic.seats - state.live;
    const owed = state.inQueue ? state.ahead : state.queued;
    if (free > owed) {
      const lease = await tx.lease.create({
        data: {
          id: randomUUID(),
          tenantId,
          licenseId,
          holder,
          fingerprint: input.fingerprint,
          user: input.user ?? null,
          grantedAt: now,
          renewedAt: now,
          expiresAt,
          activeHolder: holder,
        },
      });
      if (state.inQueue) await tx.$executeRaw`DELETE FROM "SeatQueueEntry" WHERE "licenseId" = ${licenseId}::uuid AND holder = ${holder}`;
      await tx.$executeRaw`
        INSERT INTO "SeatUsageDay" ("licenseId", day, "tenantId", peak, granted, denials)
        VALUES (${licenseId}::uuid, ${utcDay(now)}, ${tenantId}::uuid, ${state.live + 1}, 1, 0)
        ON CONFLICT ("licenseId", day) DO UPDATE
          SET peak = GREATEST("SeatUsageDay".peak, EXCLUDED.peak), granted = "SeatUsageDay".granted + 1`;
      emit(leaseEvent('lease.granted', lease, actor));
      return { kind: 'lease' as const, lease };
    }

    if (!input.wait) return { kind: 'denied' as const };
    const queueExpiresAt = new Date(now.getTime() + seconds * 1000);
    if (state.inQueue) {
      await tx.$executeRaw`UPDATE "SeatQueueEntry" SET "expiresAt" = ${queueExpiresAt}::timestamp(3)
        WHERE "licenseId" = ${licenseId}::uuid AND holder = ${holder}`;
      return { kind: 'queued' as const, position: state.ahead + 1, expiresAt: queueExpiresAt };
    }
    const entryId = randomUUID();
    await tx.seatQueueEntry.create({
      data: { id: entryId, tenantId, licenseId, holder, fingerprint: input.fingerprint, user: input.user ?? null, enqueuedAt: now, expiresAt: queueExpiresAt },
    });
    const position = state.queued + 1;
    emit({ type: 'seat.queued', subjectType: 'SeatQueueEntry', subjectId: entryId, licenseId, payload: { holder, position }, actor });
    return { kind: 'queued' as const, position, expiresAt: queueExpiresAt };
  });

  if (outcome.kind === 'denied') {
    await ctx.prisma.$executeRaw`
      INSERT INTO "SeatUsageDay" ("licenseId", day, "tenantId", peak, granted, denials)
      VALUES (${licenseId}::uuid, ${utcDay(now)}, ${tenantId}::uuid, 0, 0, 1)
      ON CONFLICT ("licenseId", day) DO UPDATE SET denials = "SeatUsageDay".denials + 1`;
    throw new LicensingError('NO_SEATS_AVAILABLE', 'All floating seats are in use');
  }
  if (outcome.kind === 'queued') return outcome;
  return { kind: 'lease', lease: outcome.lease, token: await signLease(ctx.app, outcome.lease) };
}

/**
 * One statement: reclaims this license's expired leases and queue entries, and reads what checkout
 * decides on. Data-modifying CTEs see the snapshot from before the statement, which is why every read
 * below filters on expiresAt itself.
 */
async function seatState(tx: Tx, licenseId: string, holder: string, now: Date): Promise<SeatState> {
  const [row] = await tx.$queryRaw<SeatState[]>`
    WITH expired AS (
      UPDATE "Lease" SET status = 'EXPIRED', "activeHolder" = NULL, "endedAt" = ${now}::timestamp(3)
      WHERE "licenseId" = ${licenseId}::uuid AND status = 'ACTIVE' AND "expiresAt" <= ${now}::timestamp(3)
      RETURNING id, holder
    ), stale AS (
      DELETE FROM "SeatQueueEntry" WHERE "licenseId" = ${licenseId}::uuid AND "expiresAt" <= ${now}::timestamp(3) RETURNING id
    ), q AS (
      SELECT id, holder, "enqueuedAt" FROM "SeatQueueEntry" WHERE "licenseId" = ${licenseId}::uuid AND "expiresAt" > ${now}::timestamp(3)
    ), me AS (SELECT id, "enqueuedAt" FROM q WHERE holder = ${holder})
    SELECT
      (SELECT COALESCE(json_agg(json_build_object('id', id, 'holder', holder)), '[]'::json) FROM expired) AS expired,
      (SELECT count(*)::int FROM "Lease" WHERE "licenseId" = ${licenseId}::uuid AND status = 'ACTIVE' AND "expiresAt" > ${now}::timestamp(3)) AS live,
      (SELECT id::text FROM "Lease" WHERE "licenseId" = ${licenseId}::uuid AND "activeHolder" = ${holder} AND "expiresAt" > ${now}::timestamp(3)) AS mine,
      (SELECT count(*)::int FROM q) AS queued,
      (SELECT count(*)::int FROM q, me WHERE (q."enqueuedAt", q.id) < (me."enqueuedAt", me.id)) AS ahead,
      EXISTS (SELECT 1 FROM me) AS "inQueue",
      (SELECT count(*)::int FROM stale) AS "staleCount"`;
  return row!;
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

interface LeaseWithQueue extends Lease {
  waiting: boolean;
}

/** Why a renewal or release found nothing to change: checked only on that failure path. */
async function explainMiss(ctx: ServiceContext, leaseId: string, licenseId: string, now: Date): Promise<never> {
  const [lease, license] = await Promise.all([
    ctx.prisma.lease.findFirst({ where: { id: leaseId, licenseId } }),
    ctx.prisma.license.findUnique({ where: { id: licenseId }, select: { state: true, startsAt: true, expiresAt: true } }),
  ]);
  if (license) assertUsable(license, now);
  if (!lease || lease.status === 'RELEASED') throw new LicensingError('LEASE_NOT_FOUND', 'No such lease for this license');
  throw new LicensingError('LEASE_EXPIRED', 'The lease has expired; check out a seat again');
}

/** Extends a live lease by the license's lease period: one UPDATE that also checks the license is usable. */
export async function heartbeatSeat(ctx: ServiceContext, ref: LeaseRef): Promise<GrantedLease> {
  const { leaseId, licenseId, tenantId } = await leaseOf(ctx, ref);
  const now = new Date();
  const lease = await inTransaction(ctx, tenantId, async (tx, emit) => {
    const [row] = await tx.$queryRaw<Lease[]>`
      UPDATE "Lease" l SET
        "expiresAt" = GREATEST(l."expiresAt", ${now}::timestamp(3) + COALESCE(lic."leaseSeconds", ${DEFAULT_LEASE_SECONDS}) * interval '1 second'),
        "renewedAt" = ${now}::timestamp(3)
      FROM "License" lic
      WHERE l.id = ${leaseId}::uuid AND l."licenseId" = ${licenseId}::uuid AND lic.id = l."licenseId"
        AND l.status = 'ACTIVE' AND l."expiresAt" > ${now}::timestamp(3)
        AND lic.state = 'ACTIVE' AND (lic."expiresAt" IS NULL OR lic."expiresAt" > ${now}::timestamp(3))
        AND (lic."startsAt" IS NULL OR lic."startsAt" <= ${now}::timestamp(3))
      RETURNING l.*`;
    if (row) emit(leaseEvent('lease.renewed', row, clientActor(licenseId)));
    return row;
  });
  if (!lease) return explainMiss(ctx, leaseId, licenseId, now);
  return { kind: 'lease', lease, token: await signLease(ctx.app, lease) };
}

/** Frees the seat at once; the head of the queue (if any) is told a seat is available. */
export async function releaseSeat(ctx: ServiceContext, ref: LeaseRef): Promise<GrantedLease> {
  const { leaseId, licenseId, tenantId } = await leaseOf(ctx, ref);
  const now = new Date();
  const lease = await inTransaction(ctx, tenantId, async (tx, emit) => {
    const [row] = await tx.$queryRaw<LeaseWithQueue[]>`
      UPDATE "Lease" SET status = 'RELEASED', "activeHolder" = NULL, "endedAt" = ${now}::timestamp(3)
      WHERE id = ${leaseId}::uuid AND "licenseId" = ${licenseId}::uuid AND status = 'ACTIVE' AND "expiresAt" > ${now}::timestamp(3)
      RETURNING *, EXISTS (SELECT 1 FROM "SeatQueueEntry" q WHERE q."licenseId" = "Lease"."licenseId" AND q."expiresAt" > ${now}::timestamp(3)) AS waiting`;
    if (!row) return undefined;
    const actor = clientActor(licenseId);
    emit(leaseEvent('lease.released', row, actor));
    if (row.waiting) emit(seatAvailable(licenseId, 1, actor));
    return row;
  });
  if (!lease) return explainMiss(ctx, leaseId, licenseId, now);
  const { waiting: _, ...plain } = lease;
  return { kind: 'lease', lease: plain, token: await signLease(ctx.app, plain) };
}

function seatAvailable(licenseId: string, seats: number, actor: { type: string; id: string | null }): EventInput {
  return { type: 'seat.available', subjectType: 'License', subjectId: licenseId, licenseId, payload: { seats }, actor };
}

const borrowInput = z.object({
  leaseId: z.string(),
  key: z.string(),
  seconds: z.number().int('must be an integer').min(60, 'must be at least 60').max(31_536_000, 'must be at most 365 days'),
});

/**
 * Borrows a live lease for offline use: it stays a held seat, without heartbeats, until `seconds` from
 * now (at most the license's maximum borrow period) or until it is released (returned).
 */
export async function borrowSeat(ctx: ServiceContext, raw: z.input<typeof borrowInput>): Promise<GrantedLease> {
  const input = parse(borrowInput, raw);
  const { leaseId, licenseId, tenantId } = await leaseOf(ctx, input);
  const now = new Date();
  const lease = await inTransaction(ctx, tenantId, async (tx, emit) => {
    const [row] = await tx.$queryRaw<(Lease & { maxBorrow: number })[]>`
      WITH lic AS (
        SELECT id, COALESCE((metadata->>'maxBorrowSeconds')::int, ${DEFAULT_MAX_BORROW_SECONDS}) AS "maxBorrow"
        FROM "License"
        WHERE id = ${licenseId}::uuid AND state = 'ACTIVE' AND ("expiresAt" IS NULL OR "expiresAt" > ${now}::timestamp(3))
      )
      UPDATE "Lease" l SET borrowed = true, "renewedAt" = ${now}::timestamp(3),
        "expiresAt" = ${now}::timestamp(3) + LEAST(${input.seconds}, lic."maxBorrow") * interval '1 second'
      FROM lic
      WHERE l.id = ${leaseId}::uuid AND l."licenseId" = lic.id AND l.status = 'ACTIVE' AND l."expiresAt" > ${now}::timestamp(3)
        AND lic."maxBorrow" > 0
      RETURNING l.*, lic."maxBorrow"`;
    if (!row) return undefined;
    const { maxBorrow, ...lease } = row;
    emit({ ...leaseEvent('lease.borrowed', lease, clientActor(licenseId)), payload: { holder: lease.holder, expiresAt: lease.expiresAt.toISOString(), requestedSeconds: input.seconds, maxBorrowSeconds: maxBorrow } });
    return lease;
  });
  if (!lease) return explainMiss(ctx, leaseId, licenseId, now);
  return { kind: 'lease', lease, token: await signLease(ctx.app, lease) };
}

/** Where a queued client stands; null when it is not (or no longer) queued. */
export async function seatQueuePosition(ctx: ServiceContext, raw: CheckoutInput): Promise<QueuedSeat | null> {
  const input = parse(checkoutInput, raw);
  const { licenseId } = await keyTarget(ctx.prisma, input.key);
  const now = new Date();
  const [row] = await ctx.prisma.$queryRaw<{ ahead: number; expiresAt: Date }[]>`
    WITH me AS (
      SELECT q.id, q."enqueuedAt", q."expiresAt" FROM "SeatQueueEntry" q JOIN "License" l ON l.id = q."licenseId"
      WHERE q."licenseId" = ${licenseId}::uuid AND q."expiresAt" > ${now}::timestamp(3)
        AND q.holder = CASE WHEN l."clientType" = 'USERS' THEN ${input.user ?? ''} ELSE ${input.fingerprint} END
    )
    SELECT me."expiresAt",
      (SELECT count(*)::int FROM "SeatQueueEntry" q WHERE q."licenseId" = ${licenseId}::uuid AND q."expiresAt" > ${now}::timestamp(3)
        AND (q."enqueuedAt", q.id) < (me."enqueuedAt", me.id)) AS ahead
    FROM me`;
  return row ? { kind: 'queued', position: row.ahead + 1, expiresAt: row.expiresAt } : null;
}

/**
 * Expires lapsed leases of every tenant and drops stale queue entries. Each batch is one UPDATE over
 * rows claimed with FOR UPDATE SKIP LOCKED, so N instances sweeping at once expire each lease once.
 */
export async function sweepLeases(app: AppDeps, now = new Date(), batch = 10_000): Promise<number> {
  const ctx: ServiceContext = { app, prisma: app.prisma, actor: { kind: 'anonymous' }, requestId: 'lease-sweep' };
  await app.prisma.$executeRaw`DELETE FROM "SeatQueueEntry" WHERE "expiresAt" <= ${now}::timestamp(3)`;
  let total = 0;
  for (;;) {
    const tenants = await app.prisma.$queryRaw<{ tenantId: string }[]>`
      SELECT DISTINCT "tenantId"::text AS "tenantId" FROM "Lease" WHERE status = 'ACTIVE' AND "expiresAt" <= ${now}::timestamp(3) LIMIT 100`;
    if (tenants.length === 0) return total;
    let swept = 0;
    for (const { tenantId } of tenants) {
      swept += await inTransaction(ctx, tenantId, async (tx, emit) => {
        const rows = await tx.$queryRaw<{ id: string; licenseId: string; holder: string; expiresAt: Date; waiting: boolean }[]>`
          UPDATE "Lease" SET status = 'EXPIRED', "activeHolder" = NULL, "endedAt" = ${now}::timestamp(3)
          WHERE id IN (
            SELECT id FROM "Lease" WHERE "tenantId" = ${tenantId}::uuid AND status = 'ACTIVE' AND "expiresAt" <= ${now}::timestamp(3)
            LIMIT ${batch} FOR UPDATE SKIP LOCKED
          )
          RETURNING id, "licenseId", holder, "expiresAt",
            EXISTS (SELECT 1 FROM "SeatQueueEntry" q WHERE q."licenseId" = "Lease"."licenseId") AS waiting`;
        const freed = new Map<string, number>();
        for (const r of rows) {
          emit(leaseEvent('lease.expired', r, SYSTEM));
          if (r.waiting) freed.set(r.licenseId, (freed.get(r.licenseId) ?? 0) + 1);
        }
        for (const [licenseId, seats] of freed) emit(seatAvailable(licenseId, seats, SYSTEM));
        return rows.length;
      });
    }
    total += swept;
    // Another instance holds what is left (SKIP LOCKED): it will finish it.
    if (swept === 0) return total;
  }
}
