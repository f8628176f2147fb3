import type { Lease } from '@tessera/db/client';
import type { AppDeps } from '../../context.ts';
import { sealerOf } from '../audit/chain.ts';
import { batched, inFlightFor, perApp } from '../common/batch.ts';
import { utcDay } from './client.ts';

/*
 * checkoutSeat under load: concurrent checkouts share one terms read and one grant statement (see
 * common/batch.ts), as activation does. The grant statement renews the holders' live leases, locks
 * the licenses' SeatPool rows in id order and reads them after the lock; the n-th newcomer of a
 * license in the batch gets a seat when used + (seats owed to the queue) + n <= seats, and the pool
 * grows by the leases actually inserted. What it cannot settle alone (lapsed leases to reclaim first,
 * no pool row yet, a queue, no seat left, a holder raced by another call) takes the one-call path,
 * which reclaims, queues and refuses.
 */

/** What a checkout needs of its license. */
export interface LicenseTerms {
  state: string;
  startsAt: Date | null;
  expiresAt: Date | null;
  provisioning: string;
  clientType: string;
  seats: number | null;
  leaseSeconds: number | null;
  type: string;
  gracePeriodSeconds: number | null;
}

export interface SeatTerms extends LicenseTerms {
  /** Whether the license has ACTIVE leases past their expiry (to reclaim before granting). */
  lapsed: boolean;
  /** Whether its SeatPool row exists. */
  pooled: boolean;
  /** Whether clients are waiting in its queue. */
  queued: boolean;
}

const TERMS = `
  SELECT q.i::int AS i, l.state, to_json(l."startsAt")#>>'{}' AS "startsAt", to_json(l."expiresAt")#>>'{}' AS "expiresAt",
         l.provisioning, l."clientType", l.seats, l."leaseSeconds", l.type, l."gracePeriodSeconds",
         -- The earliest expiry of a live lease, not EXISTS (... expiresAt <= now): that reads the first entry of
         -- the (license, status, expiry) index, where a generic plan of EXISTS may scan every lease of the license.
         COALESCE((SELECT min(x."expiresAt") FROM "Lease" x WHERE x."licenseId" = l.id AND x.status = 'ACTIVE') <= $2::timestamp(3), false) AS lapsed,
         EXISTS (SELECT 1 FROM "SeatPool" p WHERE p."licenseId" = l.id) AS pooled,
         EXISTS (SELECT 1 FROM "SeatQueueEntry" e WHERE e."licenseId" = l.id) AS queued
    FROM unnest($1::uuid[]) WITH ORDINALITY AS q(id, i) JOIN "License" l ON l.id = q.id`;

const utc = (v: string | null) => (v ? new Date(`${v}Z`) : null);

export const seatTermsBatcher = perApp((app: AppDeps) =>
  batched<string, SeatTerms | null>(
    async (licenseIds) => {
      const rows = await app.db.sql.query<Omit<SeatTerms, 'startsAt' | 'expiresAt'> & { i: number; startsAt: string | null; expiresAt: string | null }>(
        TERMS,
        [licenseIds, new Date().toISOString()],
        'tessera_seat_terms',
      );
      const out: (SeatTerms | null)[] = licenseIds.map(() => null);
      for (const { i, ...r } of rows) out[i - 1] = { ...r, startsAt: utc(r.startsAt), expiresAt: utc(r.expiresAt) };
      return out;
    },
    { maxInFlight: inFlightFor(app.db.kind) },
  ),
);

export interface SeatGrant {
  id: string;
  tenantId: string;
  licenseId: string;
  holder: string;
  fingerprint: string;
  user: string | null;
  department: string | null;
  seats: number;
  expiresAt: Date;
  requestId: string;
}

const LEASE_PAYLOAD = (alias: string) =>
  `jsonb_build_object('holder', ${alias}.holder, 'expiresAt', to_char(${alias}."expiresAt", 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))`;

const GRANT = `
  WITH q AS (
    SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[], $7::int[], $8::text[], $9::text[], $12::text[])
      WITH ORDINALITY AS q(id, "tenantId", "licenseId", holder, fingerprint, "user", seats, "expiresAt", "requestId", department, i)
  ), renewed AS (
    UPDATE "Lease" l SET "expiresAt" = GREATEST(l."expiresAt", q."expiresAt"::timestamp(3)), "renewedAt" = $10::timestamp(3), fingerprint = q.fingerprint,
           department = COALESCE(q.department, l.department)
      FROM q
     WHERE l."licenseId" = q."licenseId" AND l."activeHolder" = q.holder AND l.status = 'ACTIVE' AND l."expiresAt" > $10::timestamp(3)
    RETURNING l.*, q.i AS qi, q."requestId" AS "qRequestId"
  ), need AS (
    SELECT * FROM q WHERE q.i NOT IN (SELECT qi FROM renewed)
  ), pool AS (
    SELECT p."licenseId", p.used FROM "SeatPool" p WHERE p."licenseId" IN (SELECT "licenseId" FROM need)
     ORDER BY p."licenseId"
       FOR UPDATE
  ), owed AS (
    SELECT e."licenseId", count(*)::int AS n FROM "SeatQueueEntry" e
     WHERE e."licenseId" IN (SELECT "licenseId" FROM need) AND e."expiresAt" > $10::timestamp(3) GROUP BY e."licenseId"
  ), r AS (
    SELECT need.*, pool.used + COALESCE(owed.n, 0) AS taken, row_number() OVER (PARTITION BY need."licenseId" ORDER BY need.i)::int AS rn
      FROM need JOIN pool ON pool."licenseId" = need."licenseId" LEFT JOIN owed ON owed."licenseId" = need."licenseId"
  ), granted AS (
    INSERT INTO "Lease" (id, "tenantId", "licenseId", holder, fingerprint, "user", department, status, borrowed, "grantedAt", "renewedAt", "expiresAt", "activeHolder")
    SELECT id, "tenantId", "licenseId", holder, fingerprint, "user", department, 'ACTIVE', false, $10::timestamp(3), $10::timestamp(3), "expiresAt"::timestamp(3), holder
      FROM r WHERE taken + rn <= seats
    ON CONFLICT ("licenseId", "activeHolder") DO NOTHING
    RETURNING *
  ), n AS (
    SELECT "licenseId", "tenantId", count(*)::int AS n FROM granted GROUP BY "licenseId", "tenantId"
  ), upd AS (
    UPDATE "SeatPool" p SET used = p.used + n.n FROM n WHERE p."licenseId" = n."licenseId" RETURNING p."licenseId", p.used
  ), dequeued AS (
    DELETE FROM "SeatQueueEntry" e USING (SELECT "licenseId", holder FROM granted UNION ALL SELECT "licenseId", holder FROM renewed) g
     WHERE e."licenseId" = g."licenseId" AND e.holder = g.holder
  ), stats AS (
    INSERT INTO "SeatUsageDay" ("licenseId", day, "tenantId", peak, granted, denials)
    SELECT n."licenseId", $11, n."tenantId", upd.used, n.n, 0 FROM n JOIN upd ON upd."licenseId" = n."licenseId"
    ON CONFLICT ("licenseId", day) DO UPDATE SET peak = GREATEST("SeatUsageDay".peak, EXCLUDED.peak), granted = "SeatUsageDay".granted + EXCLUDED.granted
  ), audit AS (
    INSERT INTO "AuditEvent" ("tenantId", type, "actorType", "actorId", "subjectType", "subjectId", "licenseId", payload, "requestId", "occurredAt")
    SELECT g."tenantId", 'lease.granted', 'client', g."licenseId"::text, 'Lease', g.id::text, g."licenseId", ${LEASE_PAYLOAD('g')}, q."requestId", $10::timestamp(3)
      FROM granted g JOIN q ON q.id = g.id
    UNION ALL
    SELECT l."tenantId", 'lease.renewed', 'client', l."licenseId"::text, 'Lease', l.id::text, l."licenseId", ${LEASE_PAYLOAD('l')}, l."qRequestId", $10::timestamp(3)
      FROM renewed l
  )
  SELECT q.i::int AS i, COALESCE(row_to_json(g), (SELECT row_to_json(renewed) FROM renewed WHERE renewed.qi = q.i)) AS lease
    FROM q LEFT JOIN granted g ON g.id = q.id`;

function leaseFromJson(json: Record<string, unknown>): Lease {
  const { qi: _qi, qRequestId: _r, ...j } = json;
  return {
    ...(j as unknown as Lease),
    grantedAt: utc(j.grantedAt as string)!,
    renewedAt: utc(j.renewedAt as string)!,
    expiresAt: utc(j.expiresAt as string)!,
    endedAt: utc(j.endedAt as string | null),
  };
}

/** Each item: its granted or renewed lease, or null when the one-call path must answer it. */
export const seatGrantBatcher = perApp((app: AppDeps) =>
  batched<SeatGrant, Lease | null>(
    async (items) => {
      const now = new Date();
      const col = <T>(f: (x: SeatGrant) => T) => items.map(f);
      const rows = await app.db.sql.query<{ i: number; lease: Record<string, unknown> | null }>(
        GRANT,
        [
          col((x) => x.id),
          col((x) => x.tenantId),
          col((x) => x.licenseId),
          col((x) => x.holder),
          col((x) => x.fingerprint),
          col((x) => x.user),
          col((x) => x.seats),
          col((x) => x.expiresAt.toISOString()),
          col((x) => x.requestId),
          now.toISOString(),
          utcDay(now),
          col((x) => x.department),
        ],
        'tessera_seat_grant',
      );
      const out: (Lease | null)[] = items.map(() => null);
      for (const r of rows) if (r.lease) out[r.i - 1] = leaseFromJson(r.lease);
      for (const tenantId of new Set(rows.filter((r) => r.lease).map((r) => items[r.i - 1]!.tenantId))) void sealerOf(app).seal(tenantId);
      return out;
    },
    { maxInFlight: inFlightFor(app.db.kind) },
  ),
);
