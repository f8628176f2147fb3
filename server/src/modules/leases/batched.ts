import type { Lease } from '@tessera/db/client';
import type { AppDeps } from '../../context.ts';
import { sealTenants } from '../audit/chain.ts';
import { batched, inFlightFor, perApp } from '../common/batch.ts';
import { utcDay } from './client.ts';

/*
 * checkoutSeat under load: concurrent checkouts share one statement (see common/batch.ts), as activation
 * does. It reads the licenses' terms, renews the holders' live leases, locks the licenses' SeatPool rows
 * in id order, each with a share lock on its License row, and reads both after the lock; the n-th
 * newcomer of a license in the batch gets a seat when used + (seats owed to the queue) + n <= seats, as
 * the license stands then, and the pool grows by the leases actually inserted. What it cannot settle alone (a license rule to apply, lapsed leases to reclaim first, no
 * pool row yet, a queue, no seat left, a holder raced by another call) takes the one-call path, which
 * reclaims, queues and refuses.
 */

/** Used when a FLOATING license sets no leaseSeconds. */
export const DEFAULT_LEASE_SECONDS = 300;

/** The floating seats a license has now: none once it is no longer FLOATING. */
export const seatsOf = (lic: string) => `CASE WHEN ${lic}.provisioning = 'FLOATING' THEN COALESCE(${lic}.seats, 0) ELSE 0 END`;

/**
 * Whether lease `l` is within its license's `seats`: among the license's live leases, ranked borrowed
 * first (a borrowed seat is held offline, where nothing can recall it) and then by grant (the longest
 * held first, the most recently granted last), fewer than `seats` come before it. Only counted when the
 * SeatPool counter (`used`: every ACTIVE lease) is over the seats, which happens only when the seats
 * were lowered under leases already granted: a grant never takes the counter past them. Renewals (a
 * heartbeat, a checkout by the holder, a borrow) keep only the leases within the seats, so the count
 * converges on the new seats within one lease period. Under READ COMMITTED the count is of this
 * statement's snapshot: no lease can be granted ahead of `l` while the license is over its seats, so a
 * stale snapshot can only count more leases ahead (one released meanwhile), never fewer.
 */
export function withinSeats(l: string, seats: string, used: string, now: string): string {
  return `CASE WHEN COALESCE(${used}, 0) <= ${seats} THEN true ELSE (
    SELECT count(*) FROM "Lease" o WHERE o."licenseId" = ${l}."licenseId" AND o.status = 'ACTIVE' AND o."expiresAt" > ${now}
       AND (NOT o.borrowed, o."grantedAt", o.id) < (NOT ${l}.borrowed, ${l}."grantedAt", ${l}.id)) < ${seats} END`;
}

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

const utc = (v: string | null) => (v ? new Date(`${v}Z`) : null);

const LEASE_PAYLOAD = (alias: string) =>
  `jsonb_build_object('holder', ${alias}.holder, 'expiresAt', to_char(${alias}."expiresAt", 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))`;

/** A checkout as the client sent it (its license from the key). */
export interface SeatCall {
  id: string;
  tenantId: string;
  licenseId: string;
  fingerprint: string;
  user: string | null;
  department: string | null;
  requestId: string;
}

/**
 * The common checkout in one statement: the license terms and the grant for the
 * calls whose license can only grant them a seat: ACTIVE, within its dates, FLOATING with seats, nothing
 * lapsed to reclaim, a seat pool, nobody queued, and a holder (the user, on a per-user license). The
 * holder and lease expiry come from the license as seatRules gives them; whether it may still grant, and
 * the seats it has, from the License row as read again under its lock (see pool). A stricter test
 * than the service's rules, on purpose: a call it leaves out gets no lease here and takes the one-call
 * path, which reads the terms again, reclaims, queues and refuses.
 */
const CHECKOUT = `
  WITH c AS (
    SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[], $7::text[])
      WITH ORDINALITY AS c(id, "tenantId", "licenseId", fingerprint, "user", department, "requestId", i)
  ), lic AS (
    SELECT l.id, l."clientType", l."leaseSeconds" FROM "License" l
     WHERE l.id IN (SELECT "licenseId" FROM c)
       AND l.state = 'ACTIVE' AND l.provisioning = 'FLOATING' AND l.seats > 0
       AND (l."startsAt" IS NULL OR l."startsAt" <= $8::timestamp(3)) AND (l."expiresAt" IS NULL OR l."expiresAt" > $8::timestamp(3))
       -- The earliest expiry of a live lease, not EXISTS (... expiresAt <= now): that reads the first entry of
       -- the (license, status, expiry) index, where a generic plan of EXISTS may scan every lease of the license.
       AND NOT COALESCE((SELECT min(x."expiresAt") FROM "Lease" x WHERE x."licenseId" = l.id AND x.status = 'ACTIVE') <= $8::timestamp(3), false)
       AND EXISTS (SELECT 1 FROM "SeatPool" p WHERE p."licenseId" = l.id)
       AND NOT EXISTS (SELECT 1 FROM "SeatQueueEntry" e WHERE e."licenseId" = l.id)
  ), q AS (
    SELECT c.id, c."tenantId", c."licenseId", CASE WHEN lic."clientType" = 'USERS' THEN c."user" ELSE c.fingerprint END AS holder,
           c.fingerprint, c."user", lic."clientType", lic."leaseSeconds",
           $8::timestamp(3) + make_interval(secs => COALESCE(lic."leaseSeconds", ${DEFAULT_LEASE_SECONDS})) AS "expiresAt",
           c."requestId", c.department, c.i
      FROM c JOIN lic ON lic.id = c."licenseId"
     WHERE lic."clientType" <> 'USERS' OR c."user" IS NOT NULL
  ), renewed AS (
    UPDATE "Lease" l SET "expiresAt" = GREATEST(l."expiresAt", q."expiresAt"::timestamp(3)), "renewedAt" = $8::timestamp(3), fingerprint = q.fingerprint,
           department = COALESCE(q.department, l.department)
      FROM q
     WHERE l."licenseId" = q."licenseId" AND l."activeHolder" = q.holder AND l.status = 'ACTIVE' AND l."expiresAt" > $8::timestamp(3)
    RETURNING l.*, q.i AS qi, q."requestId" AS "qRequestId"
  ), need AS (
    SELECT * FROM q WHERE q.i NOT IN (SELECT qi FROM renewed)
  ), pool AS (
    -- The license is read again here, under a share lock taken with its counter's: \`lic\` above is this
    -- statement's snapshot, from before any wait for the counter, and a suspension, revocation or change
    -- of terms never touches the counter, so it can commit during that wait. Those changes hold the
    -- License row's lock until they commit, so the share lock waits for one in progress and reads the
    -- row as it left it. Only share locks are taken on License by checkouts, and the writers of License
    -- rows never wait for a SeatPool row, so this adds no lock cycle.
    SELECT p."licenseId", p.used, l.seats,
           l.state = 'ACTIVE' AND l.provisioning = 'FLOATING' AND l.seats > 0
             AND (l."startsAt" IS NULL OR l."startsAt" <= $8::timestamp(3)) AND (l."expiresAt" IS NULL OR l."expiresAt" > $8::timestamp(3))
             AS usable,
           l."clientType", l."leaseSeconds"
      FROM "SeatPool" p JOIN "License" l ON l.id = p."licenseId"
     WHERE p."licenseId" IN (SELECT "licenseId" FROM need)
     ORDER BY p."licenseId"
       FOR UPDATE OF p FOR SHARE OF l
  ), owed AS (
    SELECT e."licenseId", count(*)::int AS n FROM "SeatQueueEntry" e
     WHERE e."licenseId" IN (SELECT "licenseId" FROM need) AND e."expiresAt" > $8::timestamp(3) GROUP BY e."licenseId"
  ), r AS (
    -- Seats as the license has them now. A license no longer usable, or whose holder or lease period
    -- (read from the snapshot for q) changed meanwhile, grants nothing here: its calls take the one-call
    -- path, whose rules read it afresh and answer why.
    SELECT need.*, pool.seats, pool.used + COALESCE(owed.n, 0) AS taken, row_number() OVER (PARTITION BY need."licenseId" ORDER BY need.i)::int AS rn
      FROM need JOIN pool ON pool."licenseId" = need."licenseId" LEFT JOIN owed ON owed."licenseId" = need."licenseId"
     WHERE pool.usable AND pool."clientType" = need."clientType" AND pool."leaseSeconds" IS NOT DISTINCT FROM need."leaseSeconds"
  ), granted AS (
    INSERT INTO "Lease" (id, "tenantId", "licenseId", holder, fingerprint, "user", department, status, borrowed, "grantedAt", "renewedAt", "expiresAt", "activeHolder")
    SELECT id, "tenantId", "licenseId", holder, fingerprint, "user", department, 'ACTIVE', false, $8::timestamp(3), $8::timestamp(3), "expiresAt"::timestamp(3), holder
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
    SELECT n."licenseId", $9, n."tenantId", upd.used, n.n, 0 FROM n JOIN upd ON upd."licenseId" = n."licenseId"
    ON CONFLICT ("licenseId", day) DO UPDATE SET peak = GREATEST("SeatUsageDay".peak, EXCLUDED.peak), granted = "SeatUsageDay".granted + EXCLUDED.granted
  ), audit AS (
    INSERT INTO "AuditEvent" ("tenantId", type, "actorType", "actorId", "subjectType", "subjectId", "licenseId", payload, "requestId", "occurredAt")
    SELECT g."tenantId", 'lease.granted', 'client', g."licenseId"::text, 'Lease', g.id::text, g."licenseId", ${LEASE_PAYLOAD('g')}, q."requestId", $8::timestamp(3)
      FROM granted g JOIN q ON q.id = g.id
    UNION ALL
    SELECT l."tenantId", 'lease.renewed', 'client', l."licenseId"::text, 'Lease', l.id::text, l."licenseId", ${LEASE_PAYLOAD('l')}, l."qRequestId", $8::timestamp(3)
      FROM renewed l
  )
  SELECT q.i::int AS i, COALESCE(row_to_json(g), (SELECT row_to_json(renewed) FROM renewed WHERE renewed.qi = q.i)) AS lease
    FROM q LEFT JOIN granted g ON g.id = q.id`;

/** Each call: its granted or renewed lease, or null when the one-call path must answer it. */
export const seatCheckoutBatcher = perApp((app: AppDeps) =>
  batched<SeatCall, Lease | null>(
    async (items) => {
      const now = new Date();
      const col = <T>(f: (x: SeatCall) => T) => items.map(f);
      const rows = await app.db.sql.query<{ i: number; lease: Record<string, unknown> | null }>(
        CHECKOUT,
        [
          col((x) => x.id),
          col((x) => x.tenantId),
          col((x) => x.licenseId),
          col((x) => x.fingerprint),
          col((x) => x.user),
          col((x) => x.department),
          col((x) => x.requestId),
          now.toISOString(),
          utcDay(now),
        ],
        'tessera_seat_checkout',
      );
      const out: (Lease | null)[] = items.map(() => null);
      for (const r of rows) if (r.lease) out[r.i - 1] = leaseFromJson(r.lease);
      sealTenants(app, rows.filter((r) => r.lease).map((r) => items[r.i - 1]!.tenantId));
      return out;
    },
    { maxInFlight: inFlightFor(app.db.kind, 'write') },
  ),
);

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
