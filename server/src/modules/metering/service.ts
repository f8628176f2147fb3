import { createHash, randomUUID } from 'node:crypto';
import { Prisma, type UsageTicket } from '@tessera/db/client';
import { z } from 'zod';
import type { AppDeps } from '../../context.ts';
import { LicensingError, NotFoundError, ValidationError } from '../../errors.ts';
import { sealerOf } from '../audit/chain.ts';
import type { ServiceContext } from '../audit/service.ts';
import type { MeterTerm } from '../catalog/terms.ts';
import { parseId } from '../common/ids.ts';
import { parse, positive } from '../common/validate.ts';
import { assertUsable, isDuplicate, keyTarget } from '../leases/client.ts';
import { signerFor, TOKEN_TYPES } from '../signing/service.ts';
import { licenseTerms, usageCallBatcher, type UsageLookup, usageLookupBatcher, usageWriteBatcher } from './batched.ts';

/** How long an authorized, uncommitted ticket holds its reservation. */
export const TICKET_TTL_SECONDS = 900;

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
 * in-flight requests with one key execute once: the loser replays the winner's ticket. Every write
 * holds the use to the license's terms as read under the license row's lock; when they changed since
 * the rules read them (a suspension, a lower quota), the use is decided again on a fresh read.
 */
export async function useMeter(ctx: ServiceContext, op: 'authorize' | 'record', raw: UsageInput): Promise<TicketView> {
  const input = parse(usageInput, raw);
  const { licenseId, tenantId } = await keyTarget(ctx.prisma, input.key);
  const hash = requestHash(op, input);
  const now = new Date();
  const type = op === 'record' ? 'usage.recorded' : 'usage.authorized';
  const use = { ctx, op, input, hash, now, type, licenseId, tenantId };
  for (let attempt = 1; ; attempt++) {
    const done = await decide(use);
    if (done !== 'changed') return done;
    // Each round needs another change of the license committed while the write waited for its row.
    if (attempt >= DECISIONS) throw new Error(`license ${licenseId} changed during each of ${DECISIONS} attempts to write a use`);
  }
}

/** How often a use is decided again because its license changed meanwhile. */
const DECISIONS = 5;

/** The rules and the write of one use: its ticket, or 'changed' when the license changed under the write. */
async function decide(use: Use): Promise<TicketView | 'changed'> {
  const { ctx, input, licenseId, now, type, hash } = use;
  const known = knownMeters(ctx.app);

  // Meter terms read before: the lookup and the write in one statement, which writes only while the
  // license is usable and its meters are still these; otherwise it answers with the lookup alone.
  let row: UsageLookup | null;
  const cached = known.get(licenseId);
  const cachedTerm = cached?.find((m) => m.meter === input.meter);
  if (cached && cachedTerm && input.quantity <= cachedTerm.quota) {
    const draft = await draftTicket(use, cachedTerm);
    const call = await usageCallBatcher(ctx.app)({ ticket: draft, quota: cachedTerm.quota, type, requestId: ctx.requestId, meters: cached });
    if (call?.tried) return call.ticket ? view(call.ticket) : oneCall(use, draft, cachedTerm, call.lookup.terms);
    row = call?.lookup ?? null;
  } else {
    row = await usageLookupBatcher(ctx.app)({ licenseId, idempotencyKey: input.idempotencyKey });
  }
  if (!row) throw new LicensingError('LICENSE_NOT_FOUND', 'No license has this key');
  remember(known, licenseId, row.meters);
  if (row.ticketId) return replay(await ctx.prisma.usageTicket.findUniqueOrThrow({ where: { id: row.ticketId } }), hash);
  assertUsable(row, now);
  const term = row.meters.find((m) => m.meter === input.meter);
  if (!term) throw ValidationError.field('meter', `this license has no meter "${input.meter}"`);
  if (input.quantity > term.quota) throw new LicensingError('QUOTA_EXCEEDED', `The quota of ${term.quota} for "${term.meter}" would be exceeded`);

  const draft = await draftTicket(use, term);
  // The batched statement settles the common case; what it leaves (null) is answered one call at a time.
  const written = await usageWriteBatcher(ctx.app)({ ticket: draft, quota: term.quota, type, requestId: ctx.requestId, terms: row.terms });
  if (written === 'changed') return written;
  if (written) return view(written);
  return oneCall(use, draft, term, row.terms);
}

interface Use {
  ctx: ServiceContext;
  op: 'authorize' | 'record';
  input: z.output<typeof usageInput>;
  hash: string;
  now: Date;
  type: string;
  licenseId: string;
  tenantId: string;
}

const view = (ticket: UsageTicket): TicketView => ({ ticket, remaining: ticket.remaining, receipt: ticket.receipt });

/** The ticket to write for a use under `term`, with its signed receipt. */
async function draftTicket(u: Use, term: MeterTerm): Promise<UsageTicket> {
  const record = u.op === 'record';
  const draft: UsageTicket = {
    id: randomUUID(),
    tenantId: u.tenantId,
    licenseId: u.licenseId,
    meter: term.meter,
    window: windowOf(term.period, u.now),
    fingerprint: u.input.fingerprint ?? null,
    idempotencyKey: u.input.idempotencyKey,
    requestHash: u.hash,
    quantity: u.input.quantity,
    committed: record ? u.input.quantity : null,
    status: record ? 'COMMITTED' : 'AUTHORIZED',
    remaining: null,
    receipt: '',
    expiresAt: record ? null : new Date(u.now.getTime() + TICKET_TTL_SECONDS * 1000),
    createdAt: u.now,
    endedAt: record ? u.now : null,
  };
  // Signed before the write so the row lock on the balance is held for as short as possible.
  draft.receipt = await signReceipt(u.ctx.app, draft);
  return draft;
}

/**
 * A use the batched statements could not settle: no balance row yet, a lapsed reservation in the way, a
 * raced key. `terms` are the license's terms the use was decided on ('changed' when they no longer hold).
 */
async function oneCall(u: Use, draft: UsageTicket, term: MeterTerm, terms: string): Promise<TicketView | 'changed'> {
  const { ctx, now, type } = u;
  const attempt = () => writeUse(ctx, draft, term.quota, now, type, terms);
  let written: UsageTicket | 'changed' | undefined;
  try {
    written = await attempt();
    if (written === undefined) {
      // Lapsed reservations the sweep has not reached yet must not block this one.
      const released = await reclaimTickets(ctx.app, now, { licenseId: u.licenseId, meter: term.meter, window: draft.window });
      if (released > 0) written = await attempt();
    }
  } catch (err) {
    const raced = isDuplicate(err) ? await ticketOfKey(u) : null;
    if (!raced) throw err;
    return replay(raced, u.hash);
  }
  if (written === 'changed') return written;
  if (!written) {
    // The same key sent twice at once: the other call may have taken the quota this one asked for. It is
    // this request, written once; its ticket answers (or IDEMPOTENCY_KEY_REUSED), not a refusal.
    const earlier = await ticketOfKey(u);
    if (earlier) return replay(earlier, u.hash);
    throw new LicensingError('QUOTA_EXCEEDED', `The quota of ${term.quota} for "${term.meter}" would be exceeded`);
  }
  void sealerOf(ctx.app).seal(u.tenantId);
  return view(written);
}

const ticketOfKey = (u: Use) =>
  u.ctx.prisma.usageTicket.findUnique({ where: { licenseId_idempotencyKey: { licenseId: u.licenseId, idempotencyKey: u.input.idempotencyKey } } });

/** Per app, the meter terms last read of each license (at most KNOWN_METERS licenses, oldest dropped). */
const KNOWN_METERS = 10_000;
const meterTerms = new WeakMap<AppDeps, Map<string, MeterTerm[]>>();
function knownMeters(app: AppDeps): Map<string, MeterTerm[]> {
  let m = meterTerms.get(app);
  if (!m) meterTerms.set(app, (m = new Map()));
  return m;
}
function remember(known: Map<string, MeterTerm[]>, licenseId: string, meters: MeterTerm[]) {
  known.delete(licenseId);
  if (known.size >= KNOWN_METERS) known.delete(known.keys().next().value!);
  known.set(licenseId, meters);
}

/**
 * The audit row of a client's usage operation, as a CTE over the statement's changed ticket `t`: the
 * event commits with the change, in the same statement (inTransaction's guarantee, without holding
 * the balance row lock across round trips). Sealed and published after commit, as inTransaction does.
 */
function auditRow(ctx: ServiceContext, type: string, extra: Prisma.Sql) {
  return Prisma.sql`INSERT INTO "AuditEvent" ("tenantId", type, "actorType", "actorId", "subjectType", "subjectId", "licenseId", payload, "requestId")
    SELECT t."tenantId", ${type}, 'client', t."licenseId"::text, 'UsageTicket', t.id::text, t."licenseId",
      jsonb_build_object('meter', t.meter, 'window', t."window", 'authorized', t.quantity) || ${extra}, ${ctx.requestId}
    FROM t`;
}

/**
 * authorize/record in one statement: the license row locked FOR SHARE (before the balance row, as every
 * usage statement takes them) and its terms compared with `terms`, then the conditional balance upsert
 * that holds the quota, the ticket (its unique idempotency key makes a concurrent duplicate fail the
 * whole statement), the ledger entry of a recorded use, and the audit row. Undefined when the quota
 * would be exceeded; 'changed' when the license's terms are no longer `terms` (nothing is written).
 */
async function writeUse(ctx: ServiceContext, d: UsageTicket, quota: number, now: Date, type: string, terms: string): Promise<UsageTicket | 'changed' | undefined> {
  const record = d.status === 'COMMITTED';
  const [row] = await ctx.prisma.$queryRaw<(UsageTicket & { licenseSame: boolean })[]>`
    WITH lic AS (
      SELECT ${Prisma.raw(licenseTerms('l'))} = ${terms}::jsonb AS same FROM "License" l WHERE l.id = ${d.licenseId}::uuid FOR SHARE
    ), b AS (
      INSERT INTO "UsageBalance" ("licenseId", meter, "window", "tenantId", quota, used, reserved, "updatedAt")
      SELECT ${d.licenseId}::uuid, ${d.meter}, ${d.window}, ${d.tenantId}::uuid, ${quota}, ${record ? d.quantity : 0}, ${record ? 0 : d.quantity}, ${now}::timestamp(3)
        FROM lic WHERE lic.same
      ON CONFLICT ("licenseId", meter, "window") DO UPDATE SET
        quota = EXCLUDED.quota,
        used = "UsageBalance".used + EXCLUDED.used,
        reserved = "UsageBalance".reserved + EXCLUDED.reserved,
        "updatedAt" = EXCLUDED."updatedAt"
      WHERE "UsageBalance".used::bigint + "UsageBalance".reserved + ${d.quantity}::bigint <= EXCLUDED.quota
      RETURNING (quota - used - reserved)::int AS remaining
    ), t AS (
      INSERT INTO "UsageTicket" (id, "tenantId", "licenseId", meter, "window", fingerprint, "idempotencyKey", "requestHash", quantity, committed,
        status, remaining, receipt, "expiresAt", "createdAt", "endedAt")
      SELECT ${d.id}::uuid, ${d.tenantId}::uuid, ${d.licenseId}::uuid, ${d.meter}, ${d.window}, ${d.fingerprint}, ${d.idempotencyKey}, ${d.requestHash},
        ${d.quantity}, ${d.committed}::int, ${d.status}::"UsageTicketStatus", b.remaining, ${d.receipt}, ${d.expiresAt}::timestamp(3),
        ${now}::timestamp(3), ${d.endedAt}::timestamp(3)
      FROM b
      RETURNING *
    ), ledger AS (
      INSERT INTO "UsageLedgerEntry" ("tenantId", "licenseId", meter, "window", quantity, "ticketId", "recordedAt")
      SELECT "tenantId", "licenseId", meter, "window", quantity, id, ${now}::timestamp(3) FROM t WHERE t.status = 'COMMITTED'
    ), audit AS (
      ${auditRow(ctx, type, Prisma.sql`jsonb_build_object('quantity', t.quantity, 'remaining', t.remaining)`)}
    )
    SELECT lic.same AS "licenseSame", t.* FROM lic LEFT JOIN t ON true`;
  if (!row?.licenseSame) return 'changed';
  const { licenseSame: _, ...ticket } = row;
  return ticket.id ? ticket : undefined;
}

/**
 * The balance row `b` updated by a commit or release, as a SET item and the RETURNING `rest`: its quota
 * taken again from the license's meter as it is now (the row keeps the quota of the last use written,
 * stale once the license's quota changed), and what is left of it, never below 0 (a quota lowered under
 * tickets authorized before is exceeded by their commits: an authorized use is honoured).
 */
const QUOTA_NOW = (ticket: string) => Prisma.raw(`quota = COALESCE((SELECT (m->>'quota')::int FROM "License" lic, jsonb_array_elements(lic.meters) m
        WHERE lic.id = ${ticket}."licenseId" AND m->>'meter' = ${ticket}.meter), b.quota)`);
const REST = Prisma.raw(`GREATEST(b.quota - b.used - b.reserved, 0)::int AS rest`);

interface BalanceKey {
  licenseId: string;
  meter: string;
  window: string;
}

/**
 * Expires lapsed AUTHORIZED tickets and gives their reservations back, with their usage.released audit
 * rows, in one statement; scoped to one balance (query time, when a reservation does not fit) or to
 * all tenants (the sweep, $2 null). Tickets are claimed with FOR UPDATE SKIP LOCKED, so concurrent
 * sweepers release each ticket once. The balance rows are then locked in key order, as the usage
 * statements lock them, before any is changed: in the order a join happened to produce them, a sweep
 * and a batch of uses deadlocked on them.
 */
const RECLAIM = `
  WITH expired AS (
    UPDATE "UsageTicket" SET status = 'EXPIRED', "endedAt" = $1::timestamp(3)
     WHERE id IN (
       SELECT id FROM "UsageTicket"
        WHERE status = 'AUTHORIZED' AND "expiresAt" <= $1::timestamp(3)
          AND ($2::uuid IS NULL OR ("licenseId" = $2::uuid AND meter = $3::text AND "window" = $4::text))
        LIMIT $5::int FOR UPDATE SKIP LOCKED
     )
    RETURNING id, "tenantId", "licenseId", meter, "window", quantity
  ), sums AS (
    SELECT "licenseId", meter, "window", sum(quantity)::int AS q FROM expired GROUP BY 1, 2, 3
  ), locked AS (
    SELECT b."licenseId", b.meter, b."window" FROM "UsageBalance" b
     WHERE (b."licenseId", b.meter, b."window") IN (SELECT "licenseId", meter, "window" FROM sums)
     ORDER BY b."licenseId", b.meter, b."window"
       FOR UPDATE
  ), released AS (
    UPDATE "UsageBalance" b SET reserved = b.reserved - s.q, "updatedAt" = $1::timestamp(3)
      FROM (SELECT sums.* FROM locked JOIN sums USING ("licenseId", meter, "window")) s
     WHERE b."licenseId" = s."licenseId" AND b.meter = s.meter AND b."window" = s."window"
  ), audit AS (
    INSERT INTO "AuditEvent" ("tenantId", type, "actorType", "actorId", "subjectType", "subjectId", "licenseId", payload, "requestId")
    SELECT "tenantId", 'usage.released', 'system', NULL, 'UsageTicket', id::text, "licenseId",
      jsonb_build_object('meter', meter, 'window', "window", 'authorized', quantity, 'reason', 'expired'), 'usage-sweep'
    FROM expired
  )
  SELECT "tenantId"::text AS "tenantId", count(*)::int AS n FROM expired GROUP BY 1`;

/**
 * Runs RECLAIM as an autocommit statement on the raw driver, which runs it again when PostgreSQL aborts
 * it to break a deadlock (it changed nothing then). Returns how many tickets it expired.
 */
async function reclaimTickets(app: AppDeps, now: Date, scope: BalanceKey | { limit: number }): Promise<number> {
  const balance = 'meter' in scope ? scope : null;
  const limit = 'limit' in scope ? scope.limit : 10_000;
  const rows = await app.db.sql.query<{ tenantId: string; n: number }>(
    RECLAIM,
    [now.toISOString(), balance?.licenseId ?? null, balance?.meter ?? null, balance?.window ?? null, limit],
    'tessera_usage_reclaim',
  );
  for (const r of rows) void sealerOf(app).seal(r.tenantId);
  return rows.reduce((sum, r) => sum + r.n, 0);
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
 * unexpired ticket of this license matches, so a double commit finds nothing to change. The license's
 * status is not re-checked: the use was authorized while it was valid and has happened.
 */
export async function commitUsage(ctx: ServiceContext, raw: CommitInput): Promise<TicketView> {
  const input = parse(commitInput, raw);
  const ticketId = parseTicketId(input.ticketId);
  const { licenseId, tenantId } = await keyTarget(ctx.prisma, input.key);
  const now = new Date();
  const q = input.quantity ?? null;
  const [row] = await ctx.prisma.$queryRaw<(UsageTicket & { rest: number | null })[]>`
    WITH t AS (
      UPDATE "UsageTicket" SET status = 'COMMITTED', committed = COALESCE(${q}::int, quantity), "endedAt" = ${now}::timestamp(3)
      WHERE id = ${ticketId}::uuid AND "licenseId" = ${licenseId}::uuid AND status = 'AUTHORIZED'
        AND "expiresAt" > ${now}::timestamp(3) AND quantity >= COALESCE(${q}::int, 0)
      RETURNING *
    ), b AS (
      UPDATE "UsageBalance" b SET used = b.used + t.committed, reserved = b.reserved - t.quantity, ${QUOTA_NOW('t')}, "updatedAt" = ${now}::timestamp(3)
      FROM t WHERE b."licenseId" = t."licenseId" AND b.meter = t.meter AND b."window" = t."window"
      RETURNING ${REST}
    ), ledger AS (
      INSERT INTO "UsageLedgerEntry" ("tenantId", "licenseId", meter, "window", quantity, "ticketId", "recordedAt")
      SELECT "tenantId", "licenseId", meter, "window", committed, id, ${now}::timestamp(3) FROM t
    ), audit AS (
      ${auditRow(ctx, 'usage.committed', Prisma.sql`jsonb_build_object('quantity', t.committed, 'remaining', (SELECT rest FROM b))`)}
    )
    SELECT t.*, (SELECT rest FROM b) AS rest FROM t`;
  const done = row ? (({ rest, ...ticket }) => ({ ticket: ticket as UsageTicket, remaining: rest }))(row) : null;
  if (!done) return explainTicket(ctx, ticketId, licenseId, now, q);
  void sealerOf(ctx.app).seal(tenantId);
  return { ...done, receipt: await signReceipt(ctx.app, done.ticket) };
}

/** Gives an authorized ticket's reservation back at once (the client used nothing). */
export async function releaseUsage(ctx: ServiceContext, ref: TicketRef): Promise<TicketView> {
  const ticketId = parseTicketId(ref.ticketId);
  const { licenseId, tenantId } = await keyTarget(ctx.prisma, ref.key);
  const now = new Date();
  const [row] = await ctx.prisma.$queryRaw<(UsageTicket & { rest: number | null })[]>`
    WITH t AS (
      UPDATE "UsageTicket" SET status = 'RELEASED', "endedAt" = ${now}::timestamp(3)
      WHERE id = ${ticketId}::uuid AND "licenseId" = ${licenseId}::uuid AND status = 'AUTHORIZED' AND "expiresAt" > ${now}::timestamp(3)
      RETURNING *
    ), b AS (
      UPDATE "UsageBalance" b SET reserved = b.reserved - t.quantity, ${QUOTA_NOW('t')}, "updatedAt" = ${now}::timestamp(3)
      FROM t WHERE b."licenseId" = t."licenseId" AND b.meter = t.meter AND b."window" = t."window"
      RETURNING ${REST}
    ), audit AS (
      ${auditRow(ctx, 'usage.released', Prisma.sql`jsonb_build_object('reason', 'released', 'remaining', (SELECT rest FROM b))`)}
    )
    SELECT t.*, (SELECT rest FROM b) AS rest FROM t`;
  const done = row ? (({ rest, ...ticket }) => ({ ticket: ticket as UsageTicket, remaining: rest }))(row) : null;
  if (!done) return explainTicket(ctx, ticketId, licenseId, now);
  void sealerOf(ctx.app).seal(tenantId);
  return { ...done, receipt: await signReceipt(ctx.app, done.ticket) };
}

/** Expires lapsed tickets of every tenant and releases their reservations. Safe with N instances. */
export async function sweepTickets(app: AppDeps, now = new Date(), batch = 10_000): Promise<number> {
  let total = 0;
  for (;;) {
    const swept = await reclaimTickets(app, now, { limit: batch });
    total += swept;
    if (swept < batch) return total;
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

/**
 * Balance rows beside what the ledger (used) and the open tickets (reserved) say they must be. A license id
 * that names no license of the tenant is NotFound (as seatMap's is), not 'consistent' with no balances.
 */
export async function usageReconciliation(ctx: ServiceContext, tenantId: string, licenseId: string | null): Promise<ReconciliationRow[]> {
  if (licenseId !== null && (await ctx.prisma.license.count({ where: { id: licenseId, tenantId } })) === 0) throw new NotFoundError('License');
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
