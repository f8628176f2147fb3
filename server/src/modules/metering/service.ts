import { createHash, randomUUID } from 'node:crypto';
import type { UsageTicket } from '@tessera/db/client';
import { z } from 'zod';
import type { AppDeps } from '../../context.ts';
import { LicensingError, ValidationError } from '../../errors.ts';
import { type EventInput, inTransaction, type ServiceContext, type Tx } from '../audit/service.ts';
import type { MeterTerm } from '../catalog/terms.ts';
import { isUniqueViolation } from '../common/db.ts';
import { parseId } from '../common/ids.ts';
import { parse, positive } from '../common/validate.ts';
import { assertUsable, clientActor, keyTarget } from '../leases/client.ts';
import { signerFor, TOKEN_TYPES } from '../signing/service.ts';

/** How long an authorized, uncommitted ticket holds its reservation. */
export const TICKET_TTL_SECONDS = 900;

const SYSTEM: { type: string; id: string | null } = { type: 'system', id: null };

const usageInput = z.object({
  key: z.string(),
  fingerprint: z.string().trim().min(1, 'must not be empty').max(256, 'must be at most 256 characters').nullish(),
  meter: z.string().trim().min(1, 'must not be empty').max(64, 'must be at most 64 characters'),
  quantity: positive,
  idempotencyKey: z.string().min(1, 'must not be empty').max(255, 'must be at most 255 characters'),
});
export type UsageInput = z.input<typeof usageInput>;

const commitInput = z.object({ ticketId: z.string(), key: z.string(), quantity: positive.nullish() });
export type CommitInput = z.input<typeof commitInput>;
export interface TicketRef {
  ticketId: string;
  key: string;
}

/** A ticket as the client sees it. `remaining` is the quota left in the ticket's window after the operation. */
export interface TicketView {
  ticket: UsageTicket;
  remaining: number | null;
  receipt: string;
}

/** The balance row a use counts against: the meter's current period window (UTC). */
export function windowOf(period: MeterTerm['period'], at: Date): string {
  const iso = at.toISOString();
  switch (period) {
    case 'NONE':
      return 'all';
    case 'YEAR':
      return iso.slice(0, 4);
    case 'MONTH':
      return iso.slice(0, 7);
    case 'DAY':
      return iso.slice(0, 10);
  }
}

function requestHash(op: string, input: z.output<typeof usageInput>): string {
  return createHash('sha256')
    .update(JSON.stringify([op, input.meter, input.quantity, input.fingerprint ?? null]))
    .digest('hex');
}

function usageEvent(type: string, t: Pick<UsageTicket, 'id' | 'licenseId' | 'meter' | 'window' | 'quantity'>, extra: Record<string, unknown>, actor: { type: string; id: string | null } = clientActor(t.licenseId)): EventInput {
  return {
    type,
    subjectType: 'UsageTicket',
    subjectId: t.id,
    licenseId: t.licenseId,
    payload: { meter: t.meter, window: t.window, authorized: t.quantity, ...extra },
    actor,
  };
}

function signReceipt(app: AppDeps, t: UsageTicket): Promise<string> {
  return signerFor(app).sign(
    t.tenantId,
    TOKEN_TYPES.receipt,
    {
      sub: t.id,
      license: t.licenseId,
      meter: t.meter,
      window: t.window,
      status: t.status,
      authorized: t.quantity,
      ...(t.committed !== null ? { committed: t.committed } : {}),
      idempotencyKey: t.idempotencyKey,
    },
    t.status === 'AUTHORIZED' ? t.expiresAt : null,
  );
}

interface LicenseAndReplay {
  state: string;
  startsAt: Date | null;
  expiresAt: Date | null;
  meters: MeterTerm[];
  ticketId: string | null;
}

/** Same key, same parameters: the original ticket. Same key, other parameters: IDEMPOTENCY_KEY_REUSED (Stripe). */
function replay(ticket: UsageTicket, hash: string): TicketView {
  if (ticket.requestHash !== hash) {
    throw new LicensingError('IDEMPOTENCY_KEY_REUSED', 'This idempotency key was used with different parameters');
  }
  return { ticket, remaining: ticket.remaining, receipt: ticket.receipt };
}

/**
 * Reserves (authorize) or records (record) `quantity` of a meter. The quota holds in the database: one
 * conditional upsert of the balance row (`used + reserved + q <= quota`), so concurrent requests on any
 * number of instances can never overshoot it. The ticket's unique (license, idempotency key) makes two
 * in-flight requests with one key execute once: the loser rolls back and replays the winner's ticket.
 */
export async function useMeter(ctx: ServiceContext, op: 'authorize' | 'record', raw: UsageInput): Promise<TicketView> {
  const input = parse(usageInput, raw);
  const { licenseId, tenantId } = await keyTarget(ctx.prisma, input.key);
  const hash = requestHash(op, input);
  const now = new Date();

  const [row] = await ctx.prisma.$queryRaw<LicenseAndReplay[]>`
    SELECT l.state, l."startsAt", l."expiresAt", l.meters, t.id::text AS "ticketId"
    FROM "License" l LEFT JOIN "UsageTicket" t ON t."licenseId" = l.id AND t."idempotencyKey" = ${input.idempotencyKey}
    WHERE l.id = ${licenseId}::uuid`;
  if (!row) throw new LicensingError('LICENSE_NOT_FOUND', 'No license has this key');
  if (row.ticketId) return replay(await ctx.prisma.usageTicket.findUniqueOrThrow({ where: { id: row.ticketId } }), hash);
  assertUsable(row, now);
  const term = row.meters.find((m) => m.meter === input.meter);
  if (!term) throw ValidationError.field('meter', `this license has no meter "${input.meter}"`);
  if (input.quantity > term.quota) throw new LicensingError('QUOTA_EXCEEDED', `The quota of ${term.quota} for "${term.meter}" would be exceeded`);

  const window = windowOf(term.period, now);
  const record = op === 'record';
  const id = randomUUID();
  const expiresAt = record ? null : new Date(now.getTime() + TICKET_TTL_SECONDS * 1000);
  const draft: UsageTicket = {
    id,
    tenantId,
    licenseId,
    meter: term.meter,
    window,
    fingerprint: input.fingerprint ?? null,
    idempotencyKey: input.idempotencyKey,
    requestHash: hash,
    quantity: input.quantity,
    committed: record ? input.quantity : null,
    status: record ? 'COMMITTED' : 'AUTHORIZED',
    remaining: null,
    receipt: '',
    expiresAt,
    createdAt: now,
    endedAt: record ? now : null,
  };
  // Signed before the transaction so the row lock on the balance is held for as short as possible.
  draft.receipt = await signReceipt(ctx.app, draft);

  let outcome: TicketView | 'exceeded';
  try {
    outcome = await inTransaction(ctx, tenantId, async (tx, emit) => {
      let remaining = await reserve(tx, draft, term.quota, now);
      if (remaining === null && (await reclaimTickets(tx, emit, now, { licenseId, meter: term.meter, window })) > 0) {
        remaining = await reserve(tx, draft, term.quota, now);
      }
      if (remaining === null) return 'exceeded' as const;
      const ticket = await tx.usageTicket.create({ data: { ...draft, remaining } });
      if (record) {
        await tx.usageLedgerEntry.create({
          data: { tenantId, licenseId, meter: term.meter, window, quantity: input.quantity, ticketId: id, recordedAt: now },
        });
      }
      emit(usageEvent(record ? 'usage.recorded' : 'usage.authorized', ticket, { quantity: input.quantity, remaining }));
      return { ticket, remaining, receipt: ticket.receipt };
    });
  } catch (err) {
    if (!isUniqueViolation(err)) throw err;
    return replay(await ctx.prisma.usageTicket.findUniqueOrThrow({ where: { licenseId_idempotencyKey: { licenseId, idempotencyKey: input.idempotencyKey } } }), hash);
  }
  if (outcome === 'exceeded') {
    throw new LicensingError('QUOTA_EXCEEDED', `The quota of ${term.quota} for "${term.meter}" would be exceeded`);
  }
  return outcome;
}

/**
 * The one statement that holds the quota: creates the window's balance row or adds to it only while
 * used + reserved + q stays within the quota (in bigint, so no sum can overflow). The quota is the
 * license's current one. Returns what is left, or null when the quota would be exceeded.
 */
async function reserve(tx: Tx, t: UsageTicket, quota: number, now: Date): Promise<number | null> {
  const used = t.status === 'COMMITTED' ? t.quantity : 0;
  const reserved = t.status === 'COMMITTED' ? 0 : t.quantity;
  const [row] = await tx.$queryRaw<{ remaining: number }[]>`
    INSERT INTO "UsageBalance" ("licenseId", meter, "window", "tenantId", quota, used, reserved, "updatedAt")
    VALUES (${t.licenseId}::uuid, ${t.meter}, ${t.window}, ${t.tenantId}::uuid, ${quota}, ${used}, ${reserved}, ${now}::timestamp(3))
    ON CONFLICT ("licenseId", meter, "window") DO UPDATE SET
      quota = EXCLUDED.quota,
      used = "UsageBalance".used + EXCLUDED.used,
      reserved = "UsageBalance".reserved + EXCLUDED.reserved,
      "updatedAt" = EXCLUDED."updatedAt"
    WHERE "UsageBalance".used::bigint + "UsageBalance".reserved + ${t.quantity}::bigint <= EXCLUDED.quota
    RETURNING (quota - used - reserved)::int AS remaining`;
  return row ? row.remaining : null;
}

interface BalanceKey {
  licenseId: string;
  meter: string;
  window: string;
}

/**
 * Expires lapsed AUTHORIZED tickets and gives their reservations back, in one statement; scoped to one
 * balance (query-time, when a reservation does not fit) or to a tenant (the sweep). Rows are claimed
 * with FOR UPDATE SKIP LOCKED, so concurrent sweepers release each ticket once.
 */
async function reclaimTickets(
  tx: Tx,
  emit: (e: EventInput) => void,
  now: Date,
  scope: BalanceKey | { tenantId: string; limit: number },
): Promise<number> {
  const balance = 'meter' in scope ? scope : null;
  const tenant = 'tenantId' in scope ? scope : null;
  const rows = await tx.$queryRaw<Pick<UsageTicket, 'id' | 'licenseId' | 'meter' | 'window' | 'quantity'>[]>`
    WITH expired AS (
      UPDATE "UsageTicket" SET status = 'EXPIRED', "endedAt" = ${now}::timestamp(3)
      WHERE id IN (
        SELECT id FROM "UsageTicket"
        WHERE status = 'AUTHORIZED' AND "expiresAt" <= ${now}::timestamp(3)
          AND (${balance?.licenseId ?? null}::uuid IS NULL OR ("licenseId" = ${balance?.licenseId ?? null}::uuid AND meter = ${balance?.meter ?? null} AND "window" = ${balance?.window ?? null}))
          AND (${tenant?.tenantId ?? null}::uuid IS NULL OR "tenantId" = ${tenant?.tenantId ?? null}::uuid)
        LIMIT ${tenant?.limit ?? 10_000} FOR UPDATE SKIP LOCKED
      )
      RETURNING id, "licenseId", meter, "window", quantity
    ), sums AS (
      SELECT "licenseId", meter, "window", sum(quantity)::int AS q FROM expired GROUP BY 1, 2, 3
    ), released AS (
      UPDATE "UsageBalance" b SET reserved = b.reserved - sums.q, "updatedAt" = ${now}::timestamp(3)
      FROM sums WHERE b."licenseId" = sums."licenseId" AND b.meter = sums.meter AND b."window" = sums."window"
      RETURNING 1
    )
    SELECT id::text, "licenseId"::text, meter, "window", quantity, (SELECT count(*) FROM released) AS balances FROM expired`;
  for (const r of rows) emit(usageEvent('usage.released', r, { reason: 'expired' }, SYSTEM));
  return rows.length;
}

function parseTicketId(value: string): string {
  try {
    return parseId(value, 'UsageTicket', 'ticketId');
  } catch {
    throw ValidationError.field('ticketId', 'no such ticket for this license');
  }
}

/** Why a commit or release changed nothing: read only on that failure path. */
async function explainTicket(ctx: ServiceContext, ticketId: string, licenseId: string, now: Date, quantity?: number | null): Promise<never> {
  const t = await ctx.prisma.usageTicket.findFirst({ where: { id: ticketId, licenseId } });
  if (!t) throw ValidationError.field('ticketId', 'no such ticket for this license');
  if (t.status === 'COMMITTED') throw new LicensingError('TICKET_ALREADY_COMMITTED', 'The ticket was already committed');
  if (t.status !== 'AUTHORIZED' || (t.expiresAt && t.expiresAt.getTime() <= now.getTime())) {
    throw new LicensingError('TICKET_EXPIRED', 'The ticket has expired; its reservation was released');
  }
  if (quantity != null && quantity > t.quantity) {
    throw ValidationError.field('quantity', `must be at most the authorized ${t.quantity}`);
  }
  throw new LicensingError('TICKET_EXPIRED', 'The ticket can no longer be committed');
}

/**
 * Records the actual use of an authorized ticket (at most what was authorized; all of it by default):
 * one statement moves it from reserved to used and appends the ledger entry, and only an AUTHORIZED,
 * unexpired ticket of this license matches, so a double commit finds nothing to change.
 */
export async function commitUsage(ctx: ServiceContext, raw: CommitInput): Promise<TicketView> {
  const input = parse(commitInput, raw);
  const ticketId = parseTicketId(input.ticketId);
  const { licenseId, tenantId } = await keyTarget(ctx.prisma, input.key);
  const now = new Date();
  const q = input.quantity ?? null;
  const done = await inTransaction(ctx, tenantId, async (tx, emit) => {
    const [row] = await tx.$queryRaw<(UsageTicket & { rest: number | null })[]>`
      WITH t AS (
        UPDATE "UsageTicket" SET status = 'COMMITTED', committed = COALESCE(${q}::int, quantity), "endedAt" = ${now}::timestamp(3)
        WHERE id = ${ticketId}::uuid AND "licenseId" = ${licenseId}::uuid AND status = 'AUTHORIZED'
          AND "expiresAt" > ${now}::timestamp(3) AND quantity >= COALESCE(${q}::int, 0)
        RETURNING *
      ), b AS (
        UPDATE "UsageBalance" b SET used = b.used + t.committed, reserved = b.reserved - t.quantity, "updatedAt" = ${now}::timestamp(3)
        FROM t WHERE b."licenseId" = t."licenseId" AND b.meter = t.meter AND b."window" = t."window"
        RETURNING (b.quota - b.used - b.reserved)::int AS rest
      ), ledger AS (
        INSERT INTO "UsageLedgerEntry" ("tenantId", "licenseId", meter, "window", quantity, "ticketId", "recordedAt")
        SELECT "tenantId", "licenseId", meter, "window", committed, id, ${now}::timestamp(3) FROM t
        RETURNING id
      )
      SELECT t.*, (SELECT rest FROM b) AS rest FROM t`;
    if (!row) return null;
    const { rest, ...ticket } = row;
    emit(usageEvent('usage.committed', ticket, { quantity: ticket.committed, remaining: rest }));
    return { ticket: ticket as UsageTicket, remaining: rest };
  });
  if (!done) return explainTicket(ctx, ticketId, licenseId, now, q);
  return { ...done, receipt: await signReceipt(ctx.app, done.ticket) };
}

/** Gives an authorized ticket's reservation back at once (the client used nothing). */
export async function releaseUsage(ctx: ServiceContext, ref: TicketRef): Promise<TicketView> {
  const ticketId = parseTicketId(ref.ticketId);
  const { licenseId, tenantId } = await keyTarget(ctx.prisma, ref.key);
  const now = new Date();
  const done = await inTransaction(ctx, tenantId, async (tx, emit) => {
    const [row] = await tx.$queryRaw<(UsageTicket & { rest: number | null })[]>`
      WITH t AS (
        UPDATE "UsageTicket" SET status = 'RELEASED', "endedAt" = ${now}::timestamp(3)
        WHERE id = ${ticketId}::uuid AND "licenseId" = ${licenseId}::uuid AND status = 'AUTHORIZED' AND "expiresAt" > ${now}::timestamp(3)
        RETURNING *
      ), b AS (
        UPDATE "UsageBalance" b SET reserved = b.reserved - t.quantity, "updatedAt" = ${now}::timestamp(3)
        FROM t WHERE b."licenseId" = t."licenseId" AND b.meter = t.meter AND b."window" = t."window"
        RETURNING (b.quota - b.used - b.reserved)::int AS rest
      )
      SELECT t.*, (SELECT rest FROM b) AS rest FROM t`;
    if (!row) return null;
    const { rest, ...ticket } = row;
    emit(usageEvent('usage.released', ticket, { reason: 'released', remaining: rest }));
    return { ticket: ticket as UsageTicket, remaining: rest };
  });
  if (!done) return explainTicket(ctx, ticketId, licenseId, now);
  return { ...done, receipt: await signReceipt(ctx.app, done.ticket) };
}

/** Expires lapsed tickets of every tenant and releases their reservations. Safe with N instances. */
export async function sweepTickets(app: AppDeps, now = new Date(), batch = 10_000): Promise<number> {
  const ctx: ServiceContext = { app, prisma: app.prisma, actor: { kind: 'anonymous' }, requestId: 'usage-sweep' };
  let total = 0;
  for (;;) {
    const tenants = await app.prisma.$queryRaw<{ tenantId: string }[]>`
      SELECT DISTINCT "tenantId"::text AS "tenantId" FROM "UsageTicket" WHERE status = 'AUTHORIZED' AND "expiresAt" <= ${now}::timestamp(3) LIMIT 100`;
    if (tenants.length === 0) return total;
    let swept = 0;
    for (const { tenantId } of tenants) {
      swept += await inTransaction(ctx, tenantId, (tx, emit) => reclaimTickets(tx, emit, now, { tenantId, limit: batch }));
    }
    total += swept;
    if (swept === 0) return total;
  }
}

export interface ReconciliationRow {
  licenseId: string;
  meter: string;
  window: string;
  quota: number;
  used: number;
  reserved: number;
  ledgerUsed: number;
  openReserved: number;
  consistent: boolean;
}

/** Balance rows beside what the ledger (used) and the open tickets (reserved) say they must be. */
export async function usageReconciliation(ctx: ServiceContext, tenantId: string, licenseId: string | null): Promise<ReconciliationRow[]> {
  const rows = await ctx.prisma.$queryRaw<Omit<ReconciliationRow, 'consistent'>[]>`
    SELECT b."licenseId"::text AS "licenseId", b.meter, b."window", b.quota, b.used, b.reserved,
      COALESCE((SELECT sum(l.quantity) FROM "UsageLedgerEntry" l
        WHERE l."licenseId" = b."licenseId" AND l.meter = b.meter AND l."window" = b."window"), 0)::int AS "ledgerUsed",
      COALESCE((SELECT sum(t.quantity) FROM "UsageTicket" t
        WHERE t."licenseId" = b."licenseId" AND t.meter = b.meter AND t."window" = b."window" AND t.status = 'AUTHORIZED'), 0)::int AS "openReserved"
    FROM "UsageBalance" b
    WHERE b."tenantId" = ${tenantId}::uuid AND (${licenseId}::uuid IS NULL OR b."licenseId" = ${licenseId}::uuid)
    ORDER BY b."licenseId", b.meter, b."window"`;
  return rows.map((r) => ({ ...r, consistent: r.used === r.ledgerUsed && r.reserved === r.openReserved }));
}
