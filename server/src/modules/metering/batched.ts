import type { UsageTicket } from '@tessera/db/client';
import type { AppDeps } from '../../context.ts';
import { sealerOf } from '../audit/chain.ts';
import { batched, inFlightFor, perApp } from '../common/batch.ts';
import type { MeterTerm } from '../catalog/terms.ts';

/*
 * authorizeUsage / recordUsage under load: concurrent calls share one statement per step (see
 * common/batch.ts), as activation does. The balance rows are locked in key order and read after the
 * lock; the n-th use of one balance in the batch fits when used + reserved + (its quantity and those
 * before it) <= quota, and the balance grows by what was actually written. Whatever the batch cannot
 * settle alone (no balance row yet, a use that does not fit, an idempotency key raced by another
 * call) is answered by the one-call path, which reclaims lapsed reservations, replays and refuses.
 */

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
}

const LOOKUP = `
  SELECT q.i::int AS i, l.state, to_json(l."startsAt")#>>'{}' AS "startsAt", to_json(l."expiresAt")#>>'{}' AS "expiresAt", l.meters, l.type, l."gracePeriodSeconds", t.id::text AS "ticketId"
    FROM unnest($1::uuid[], $2::text[]) WITH ORDINALITY AS q("licenseId", key, i)
    JOIN "License" l ON l.id = q."licenseId"
    LEFT JOIN "UsageTicket" t ON t."licenseId" = q."licenseId" AND t."idempotencyKey" = q.key`;

const utc = (v: string | null) => (v ? new Date(`${v}Z`) : null);

export const usageLookupBatcher = perApp((app: AppDeps) =>
  batched<UsageLookupItem, UsageLookup | null>(
    async (items) => {
      const rows = await app.db.sql.query<{ i: number; state: string; startsAt: string | null; expiresAt: string | null; meters: MeterTerm[]; type: string; gracePeriodSeconds: number | null; ticketId: string | null }>(
        LOOKUP,
        [items.map((x) => x.licenseId), items.map((x) => x.idempotencyKey)],
        'tessera_usage_lookup',
      );
      const out: (UsageLookup | null)[] = items.map(() => null);
      for (const r of rows) {
        out[r.i - 1] = { state: r.state, startsAt: utc(r.startsAt), expiresAt: utc(r.expiresAt), meters: r.meters, type: r.type, gracePeriodSeconds: r.gracePeriodSeconds, ticketId: r.ticketId };
      }
      return out;
    },
    { maxInFlight: inFlightFor(app.db.kind, 'read') },
  ),
);

export interface UsageWrite {
  ticket: UsageTicket;
  quota: number;
  /** `usage.recorded` or `usage.authorized`. */
  type: string;
  requestId: string;
}

const WRITE = `
  WITH q AS (
    SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::int[], $7::text[], $8::text[], $9::text[], $10::int[], $11::int[],
                         $12::text[], $13::text[], $14::text[], $15::text[], $16::text[], $17::text[])
      WITH ORDINALITY AS q(id, "tenantId", "licenseId", meter, "window", quota, fingerprint, "idempotencyKey", "requestHash", quantity, committed,
                           status, receipt, "expiresAt", "endedAt", "requestId", type, i)
  ), bal AS (
    SELECT b."licenseId", b.meter, b."window", b.used, b.reserved FROM "UsageBalance" b
     WHERE (b."licenseId", b.meter, b."window") IN (SELECT "licenseId", meter, "window" FROM q)
     ORDER BY b."licenseId", b.meter, b."window"
       FOR UPDATE
  ), r AS (
    SELECT q.*, bal.used, bal.reserved,
           sum(q.quantity::bigint) OVER (PARTITION BY q."licenseId", q.meter, q."window" ORDER BY q.i) AS cum
      FROM q JOIN bal ON bal."licenseId" = q."licenseId" AND bal.meter = q.meter AND bal."window" = q."window"
  ), t AS (
    INSERT INTO "UsageTicket" (id, "tenantId", "licenseId", meter, "window", fingerprint, "idempotencyKey", "requestHash", quantity, committed,
                               status, remaining, receipt, "expiresAt", "createdAt", "endedAt")
    SELECT id, "tenantId", "licenseId", meter, "window", fingerprint, "idempotencyKey", "requestHash", quantity, committed,
           status::"UsageTicketStatus", (quota - used - reserved - cum)::int, receipt, "expiresAt"::timestamp(3), $18::timestamp(3), "endedAt"::timestamp(3)
      FROM r WHERE used::bigint + reserved + cum <= quota
    ON CONFLICT ("licenseId", "idempotencyKey") DO NOTHING
    RETURNING *
  ), s AS (
    SELECT t."licenseId", t.meter, t."window", max(q.quota) AS quota,
           sum(COALESCE(t.committed, 0))::int AS used, sum(CASE WHEN t.status = 'AUTHORIZED' THEN t.quantity ELSE 0 END)::int AS reserved
      FROM t JOIN q ON q.id = t.id GROUP BY t."licenseId", t.meter, t."window"
  ), upd AS (
    UPDATE "UsageBalance" b SET quota = s.quota, used = b.used + s.used, reserved = b.reserved + s.reserved, "updatedAt" = $18::timestamp(3)
      FROM s WHERE b."licenseId" = s."licenseId" AND b.meter = s.meter AND b."window" = s."window"
  ), ledger AS (
    INSERT INTO "UsageLedgerEntry" ("tenantId", "licenseId", meter, "window", quantity, "ticketId", "recordedAt")
    SELECT "tenantId", "licenseId", meter, "window", quantity, id, $18::timestamp(3) FROM t WHERE t.status = 'COMMITTED'
  ), audit AS (
    INSERT INTO "AuditEvent" ("tenantId", type, "actorType", "actorId", "subjectType", "subjectId", "licenseId", payload, "requestId", "occurredAt")
    SELECT t."tenantId", q.type, 'client', t."licenseId"::text, 'UsageTicket', t.id::text, t."licenseId",
           jsonb_build_object('meter', t.meter, 'window', t."window", 'authorized', t.quantity, 'quantity', t.quantity, 'remaining', t.remaining),
           q."requestId", $18::timestamp(3)
      FROM t JOIN q ON q.id = t.id
  )
  SELECT q.i::int AS i, row_to_json(t) AS ticket FROM q JOIN t ON t.id = q.id`;

const iso = (d: Date | null) => (d ? d.toISOString() : null);

function ticketFromJson(j: Record<string, unknown>): UsageTicket {
  return { ...(j as unknown as UsageTicket), createdAt: utc(j.createdAt as string)!, expiresAt: utc(j.expiresAt as string | null), endedAt: utc(j.endedAt as string | null) };
}

/** Each item: its written ticket, or null when the one-call path must answer it. */
export const usageWriteBatcher = perApp((app: AppDeps) =>
  batched<UsageWrite, UsageTicket | null>(
    async (items) => {
      const now = new Date();
      const col = <T>(f: (x: UsageWrite) => T) => items.map(f);
      const rows = await app.db.sql.query<{ i: number; ticket: Record<string, unknown> }>(
        WRITE,
        [
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
          now.toISOString(),
        ],
        'tessera_usage_write',
      );
      const out: (UsageTicket | null)[] = items.map(() => null);
      for (const r of rows) out[r.i - 1] = ticketFromJson(r.ticket);
      for (const tenantId of new Set(rows.map((r) => items[r.i - 1]!.ticket.tenantId))) void sealerOf(app).seal(tenantId);
      return out;
    },
    { maxInFlight: inFlightFor(app.db.kind, 'write') },
  ),
);
