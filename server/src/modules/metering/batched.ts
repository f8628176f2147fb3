import type { UsageTicket } from '@tessera/db/client';
import type { AppDeps } from '../../context.ts';
import { sealTenants } from '../audit/chain.ts';
import { batched, inDistinctRounds, inFlightFor, perApp } from '../common/batch.ts';
import type { MeterTerm } from '../catalog/terms.ts';

/*
 * authorizeUsage / recordUsage under load: concurrent calls share one statement per step (see
 * common/batch.ts), as activation does. Each write statement first locks the license rows FOR SHARE
 * (in id order) and then the balance rows FOR UPDATE (in key order), and reads both after the lock:
 * a license change (suspend, revoke, update: they take the license row FOR UPDATE) waits for the uses
 * in flight, and a use that waited for it is decided again on the changed license. Every statement
 * that writes balance rows takes them in this order, license first, so none deadlock on them.
 * The n-th use of one balance in the batch fits when used + reserved + (its quantity and those
 * before it) <= quota, and the balance grows by what was actually written. One idempotency key
 * appears once per statement (rounds), so every use ranked is written. Whatever the batch cannot
 * settle alone (no balance row yet, a use that does not fit, an idempotency key raced by another
 * call) is answered by the one-call path, which reclaims lapsed reservations, replays and refuses.
 */

/**
 * The license columns the rules decide a use on (state, dates, grace, type, meters with their quotas),
 * as one value: a write compares it, under the license row's lock, with the value the rules read.
 */
export const licenseTerms = (alias: string) =>
  `jsonb_build_array(${alias}.state, ${alias}."startsAt", ${alias}."expiresAt", ${alias}."gracePeriodSeconds", ${alias}.type, ${alias}.meters)`;

export interface UsageLookupItem {
  licenseId: string;
  idempotencyKey: string;
}

export interface UsageLookup {
  state: string;
  startsAt: Date | null;
  expiresAt: Date | null;
  meters: MeterTerm[];
  type: string;
  gracePeriodSeconds: number | null;
  /** The ticket already written with this idempotency key, if any. */
  ticketId: string | null;
  /** licenseTerms of the row read, which a write holds the use to. */
  terms: string;
}

const LOOKUP = `
  SELECT q.i::int AS i, l.state, to_json(l."startsAt")#>>'{}' AS "startsAt", to_json(l."expiresAt")#>>'{}' AS "expiresAt", l.meters, l.type, l."gracePeriodSeconds", t.id::text AS "ticketId",
         ${licenseTerms('l')}::text AS terms
    FROM unnest($1::uuid[], $2::text[]) WITH ORDINALITY AS q("licenseId", key, i)
    JOIN "License" l ON l.id = q."licenseId"
    LEFT JOIN "UsageTicket" t ON t."licenseId" = q."licenseId" AND t."idempotencyKey" = q.key`;

const utc = (v: string | null) => (v ? new Date(`${v}Z`) : null);

interface LookupRow {
  i: number;
  state: string;
  startsAt: string | null;
  expiresAt: string | null;
  meters: MeterTerm[];
  type: string;
  gracePeriodSeconds: number | null;
  ticketId: string | null;
  terms: string;
}

const lookupOf = (r: LookupRow): UsageLookup => ({
  state: r.state,
  startsAt: utc(r.startsAt),
  expiresAt: utc(r.expiresAt),
  meters: r.meters,
  type: r.type,
  gracePeriodSeconds: r.gracePeriodSeconds,
  ticketId: r.ticketId,
  terms: r.terms,
});

export const usageLookupBatcher = perApp((app: AppDeps) =>
  batched<UsageLookupItem, UsageLookup | null>(
    async (items) => {
      const rows = await app.db.sql.query<LookupRow>(LOOKUP, [items.map((x) => x.licenseId), items.map((x) => x.idempotencyKey)], 'tessera_usage_lookup');
      const out: (UsageLookup | null)[] = items.map(() => null);
      for (const r of rows) out[r.i - 1] = lookupOf(r);
      return out;
    },
    { maxInFlight: inFlightFor(app.db.kind, 'read') },
  ),
);

interface UsageDraft {
  ticket: UsageTicket;
  quota: number;
  /** `usage.recorded` or `usage.authorized`. */
  type: string;
  requestId: string;
}

export interface UsageWrite extends UsageDraft {
  /** The license's terms (UsageLookup.terms) the rules decided on: the use is written only while they hold. */
  terms: string;
}

/** The ticket columns of a use, as the unnest of WRITE and USE_CALL gives them ($1..$17). */
const USES = `unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::int[], $7::text[], $8::text[], $9::text[], $10::int[], $11::int[],
                         $12::text[], $13::text[], $14::text[], $15::text[], $16::text[], $17::text[])
      WITH ORDINALITY AS q(id, "tenantId", "licenseId", meter, "window", quota, fingerprint, "idempotencyKey", "requestHash", quantity, committed,
                           status, receipt, "expiresAt", "endedAt", "requestId", type, i)`;

/**
 * The license rows of the uses in `q`, as the CTE lic: locked FOR SHARE in id order before any balance
 * row, and read after the lock (a change committed while the statement waited is what it sees).
 */
const LICENSES = `lic AS (
    SELECT l.id, l.state, l."startsAt", l."expiresAt", l.meters, l.type, l."gracePeriodSeconds", ${licenseTerms('l')} AS terms
      FROM "License" l WHERE l.id IN (SELECT "licenseId" FROM q)
     ORDER BY l.id
       FOR SHARE
  )`;

/**
 * The writes of the uses in `from` (the columns of USES; their licenses locked by LICENSES), at $18, as
 * the CTEs bal, r, t, s, upd, ledger and audit: the balance rows locked in key order, the tickets that
 * fit, the balances grown by them, the ledger entries of recorded uses and the audit rows.
 */
function usageWrites(from: string): string {
  return `bal AS (
    SELECT b."licenseId", b.meter, b."window", b.used, b.reserved FROM "UsageBalance" b
     WHERE (b."licenseId", b.meter, b."window") IN (SELECT "licenseId", meter, "window" FROM ${from})
     ORDER BY b."licenseId", b.meter, b."window"
       FOR UPDATE
  ), r AS (
    SELECT ${from}.*, bal.used, bal.reserved,
           sum(${from}.quantity::bigint) OVER (PARTITION BY ${from}."licenseId", ${from}.meter, ${from}."window" ORDER BY ${from}.i) AS cum
      FROM ${from} JOIN bal ON bal."licenseId" = ${from}."licenseId" AND bal.meter = ${from}.meter AND bal."window" = ${from}."window"
  ), t AS (
    INSERT INTO "UsageTicket" (id, "tenantId", "licenseId", meter, "window", fingerprint, "idempotencyKey", "requestHash", quantity, committed,
                               status, remaining, receipt, "expiresAt", "createdAt", "endedAt")
    SELECT id, "tenantId", "licenseId", meter, "window", fingerprint, "idempotencyKey", "requestHash", quantity, committed,
           status::"UsageTicketStatus", (quota - used - reserved - cum)::int, receipt, "expiresAt"::timestamp(3), $18::timestamp(3), "endedAt"::timestamp(3)
      FROM r WHERE used::bigint + reserved + cum <= quota
    ON CONFLICT ("licenseId", "idempotencyKey") DO NOTHING
    RETURNING *
  ), s AS (
    SELECT t."licenseId", t.meter, t."window", max(${from}.quota) AS quota,
           sum(COALESCE(t.committed, 0))::int AS used, sum(CASE WHEN t.status = 'AUTHORIZED' THEN t.quantity ELSE 0 END)::int AS reserved
      FROM t JOIN ${from} ON ${from}.id = t.id GROUP BY t."licenseId", t.meter, t."window"
  ), upd AS (
    UPDATE "UsageBalance" b SET quota = s.quota, used = b.used + s.used, reserved = b.reserved + s.reserved, "updatedAt" = $18::timestamp(3)
      FROM s WHERE b."licenseId" = s."licenseId" AND b.meter = s.meter AND b."window" = s."window"
  ), ledger AS (
    INSERT INTO "UsageLedgerEntry" ("tenantId", "licenseId", meter, "window", quantity, "ticketId", "recordedAt")
    SELECT "tenantId", "licenseId", meter, "window", quantity, id, $18::timestamp(3) FROM t WHERE t.status = 'COMMITTED'
  ), audit AS (
    INSERT INTO "AuditEvent" ("tenantId", type, "actorType", "actorId", "subjectType", "subjectId", "licenseId", payload, "requestId", "occurredAt")
    SELECT t."tenantId", ${from}.type, 'client', t."licenseId"::text, 'UsageTicket', t.id::text, t."licenseId",
           jsonb_build_object('meter', t.meter, 'window', t."window", 'authorized', t.quantity, 'quantity', t.quantity, 'remaining', t.remaining),
           ${from}."requestId", $18::timestamp(3)
      FROM t JOIN ${from} ON ${from}.id = t.id
  )`;
}

/**
 * The uses the rules allowed: written only while their license's terms, read under its lock, are those
 * the rules read ($19; `same` false otherwise), and while no ticket holds their key.
 */
const WRITE = `
  WITH q AS (SELECT * FROM ${USES}), ${LICENSES}, w AS (
    SELECT q.* FROM q JOIN lic ON lic.id = q."licenseId"
     WHERE lic.terms = ($19::text[])[q.i]::jsonb
       AND NOT EXISTS (SELECT 1 FROM "UsageTicket" u WHERE u."licenseId" = q."licenseId" AND u."idempotencyKey" = q."idempotencyKey")
  ), ${usageWrites('w')}
  SELECT q.i::int AS i, COALESCE(lic.terms = ($19::text[])[q.i]::jsonb, false) AS same, row_to_json(t) AS ticket
    FROM q LEFT JOIN lic ON lic.id = q."licenseId" LEFT JOIN t ON t.id = q.id`;

const iso = (d: Date | null) => (d ? d.toISOString() : null);

function ticketFromJson(j: Record<string, unknown>): UsageTicket {
  return { ...(j as unknown as UsageTicket), createdAt: utc(j.createdAt as string)!, expiresAt: utc(j.expiresAt as string | null), endedAt: utc(j.endedAt as string | null) };
}

/** $1..$17 of USES, from the uses' tickets. */
function useColumns(items: UsageDraft[]): unknown[] {
  const col = <T>(f: (x: UsageDraft) => T) => items.map(f);
  return [
    col((x) => x.ticket.id),
    col((x) => x.ticket.tenantId),
    col((x) => x.ticket.licenseId),
    col((x) => x.ticket.meter),
    col((x) => x.ticket.window),
    col((x) => x.quota),
    col((x) => x.ticket.fingerprint),
    col((x) => x.ticket.idempotencyKey),
    col((x) => x.ticket.requestHash),
    col((x) => x.ticket.quantity),
    col((x) => x.ticket.committed),
    col((x) => x.ticket.status),
    col((x) => x.ticket.receipt),
    col((x) => iso(x.ticket.expiresAt)),
    col((x) => iso(x.ticket.endedAt)),
    col((x) => x.requestId),
    col((x) => x.type),
  ];
}

/** A use's idempotency key: once per statement, so that every use ranked in it is written. */
const keyOf = (x: UsageDraft) => `${x.ticket.licenseId}\u0000${x.ticket.idempotencyKey}`;

/**
 * Each item: its written ticket; 'changed' when its license changed since the rules read it (they
 * decide again); null when the one-call path must answer it.
 */
export const usageWriteBatcher = perApp((app: AppDeps) =>
  batched<UsageWrite, UsageTicket | 'changed' | null>(
    (batch) => inDistinctRounds(batch, keyOf, async (items) => {
      const now = new Date();
      const rows = await app.db.sql.query<{ i: number; same: boolean; ticket: Record<string, unknown> | null }>(
        WRITE,
        [...useColumns(items), now.toISOString(), items.map((x) => x.terms)],
        'tessera_usage_write',
      );
      const out: (UsageTicket | 'changed' | null)[] = items.map(() => null);
      for (const r of rows) out[r.i - 1] = r.ticket ? ticketFromJson(r.ticket) : r.same ? null : 'changed';
      sealTenants(app, rows.filter((r) => r.ticket).map((r) => items[r.i - 1]!.ticket.tenantId));
      return out;
    }),
    { maxInFlight: inFlightFor(app.db.kind, 'write') },
  ),
);

export interface UsageCall extends UsageDraft {
  /** The license's meter terms as last read: the use is written here only while they are unchanged. */
  meters: MeterTerm[];
}

export interface UsageCallOutcome {
  /** What the lookup found, as LOOKUP would have. */
  lookup: UsageLookup;
  /** Whether the write was tried here: the license usable, its meters unchanged, the key unused. */
  tried: boolean;
  /** The ticket written; null when not tried, or when the one-call path must answer it. */
  ticket: UsageTicket | null;
}

/**
 * authorizeUsage / recordUsage in one statement, for a license whose meter terms the instance has read
 * before (the ticket and its receipt are made from them): the lookup (as LOOKUP, of the license row
 * read under its lock) and, for the uses of an ACTIVE license within its dates whose meters are still
 * those terms and whose idempotency key is unused, the writes of WRITE. Every use it leaves out is
 * decided by the service from the lookup returned.
 */
const USE_CALL = `
  WITH q AS (SELECT * FROM ${USES}), ${LICENSES}, f AS (
    SELECT q.*, l.state AS "lState", to_json(l."startsAt")#>>'{}' AS "lStartsAt", to_json(l."expiresAt")#>>'{}' AS "lExpiresAt",
           l.meters AS "lMeters", l.type AS "lType", l."gracePeriodSeconds" AS "lGrace", l.terms::text AS "lTerms", u.id::text AS "ticketId",
           COALESCE(l.state = 'ACTIVE' AND (l."startsAt" IS NULL OR l."startsAt" <= $18::timestamp(3)) AND (l."expiresAt" IS NULL OR l."expiresAt" > $18::timestamp(3))
             AND u.id IS NULL AND l.meters = ($19::text[])[q.i]::jsonb, false) AS ok
      FROM q JOIN lic l ON l.id = q."licenseId"
      LEFT JOIN "UsageTicket" u ON u."licenseId" = q."licenseId" AND u."idempotencyKey" = q."idempotencyKey"
  ), ok AS (
    SELECT * FROM f WHERE ok
  ), ${usageWrites('ok')}
  SELECT f.i::int AS i, f."lState" AS state, f."lStartsAt" AS "startsAt", f."lExpiresAt" AS "expiresAt", f."lMeters" AS meters, f."lType" AS type,
         f."lGrace" AS "gracePeriodSeconds", f."ticketId", f."lTerms" AS terms, f.ok AS tried, row_to_json(t) AS ticket
    FROM f LEFT JOIN t ON t.id = f.id`;

/** Each item: the lookup and, when the write was tried, its ticket (null: the one-call path answers). */
export const usageCallBatcher = perApp((app: AppDeps) =>
  batched<UsageCall, UsageCallOutcome | null>(
    (batch) => inDistinctRounds(batch, keyOf, async (items) => {
      const now = new Date();
      const rows = await app.db.sql.query<LookupRow & { tried: boolean; ticket: Record<string, unknown> | null }>(
        USE_CALL,
        [...useColumns(items), now.toISOString(), items.map((x) => JSON.stringify(x.meters))],
        'tessera_usage_call',
      );
      const out: (UsageCallOutcome | null)[] = items.map(() => null);
      for (const r of rows) out[r.i - 1] = { lookup: lookupOf(r), tried: r.tried, ticket: r.ticket ? ticketFromJson(r.ticket) : null };
      sealTenants(app, rows.filter((r) => r.ticket).map((r) => items[r.i - 1]!.ticket.tenantId));
      return out;
    }),
    { maxInFlight: inFlightFor(app.db.kind, 'write') },
  ),
);
