import type { ServiceContext } from '../audit/service.ts';

export type SeatGrouping = 'HOLDER' | 'USER' | 'DEPARTMENT';

export interface SeatUsageBucket {
  /** UTC day, YYYY-MM-DD. */
  day: string;
  /** The holder, user or department; null for leases that did not report one. */
  key: string | null;
  /** Leases granted that day. */
  leases: number;
  /** Seat time held within that day, in seconds. */
  secondsHeld: number;
  /** Most seats held at once within that day. */
  peakConcurrent: number;
}

/**
 * The leases of a license held at some time after `since` (bound as text), on the (license, status,
 * expiry) index: a lease is held until its expiry at the latest, however long ago it was granted (one
 * heartbeated for months, a long borrow).
 */
const heldSince = (license: string, since: string, now: string) =>
  `"licenseId" = ${license}::uuid AND status IN ('ACTIVE', 'EXPIRED', 'RELEASED') AND "expiresAt" > ${since}::timestamp(3) AND "grantedAt" < ${now}::timestamp(3)`;

/**
 * Seat use of one floating license per UTC day and per holder, user or department, over the last
 * `days` days: leases granted, seat time held, and peak concurrent use (from the +1/-1 events of every
 * lease start and end, so a department's peak is exact, not a sum of samples). One statement.
 */
export async function seatUsageBreakdown(ctx: ServiceContext, licenseId: string, groupBy: SeatGrouping, days: number): Promise<SeatUsageBucket[]> {
  const now = new Date();
  const since = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()) - (days - 1) * 86_400_000);
  const column = { HOLDER: 'holder', USER: '"user"', DEPARTMENT: 'department' }[groupBy];
  return ctx.app.db.sql.query<SeatUsageBucket>(
    `WITH l AS (
       SELECT ${column} AS key, "grantedAt" AS s, LEAST(COALESCE("endedAt", $3::timestamp(3)), "expiresAt", $3::timestamp(3)) AS e
         FROM "Lease"
        WHERE ${heldSince('$1', '$2', '$3')}
     ), held AS (
       SELECT * FROM l WHERE e > $2::timestamp(3)
     ), d AS (
       SELECT generate_series($2::timestamp(3), $3::timestamp(3), interval '1 day') AS day
     ), per AS (
       SELECT d.day, h.key,
              count(*) FILTER (WHERE h.s >= d.day)::int AS leases,
              COALESCE(sum(EXTRACT(EPOCH FROM LEAST(h.e, d.day + interval '1 day') - GREATEST(h.s, d.day))), 0)::int AS "secondsHeld",
              count(*) FILTER (WHERE h.s <= d.day AND h.e > d.day)::int AS "atStart"
         FROM d JOIN held h ON h.s < d.day + interval '1 day' AND h.e > d.day
        GROUP BY d.day, h.key
     ), ev AS (
       SELECT key, s AS at, 1 AS delta FROM held UNION ALL SELECT key, e AS at, -1 AS delta FROM held
     ), running AS (
       -- Ends before starts at the same instant: a seat handed over is not two seats.
       SELECT key, at, sum(delta) OVER (PARTITION BY key ORDER BY at, delta ROWS UNBOUNDED PRECEDING) AS n FROM ev
     ), peaks AS (
       SELECT date_trunc('day', at) AS day, key, max(n)::int AS peak FROM running WHERE at >= $2::timestamp(3) GROUP BY 1, 2
     )
     SELECT to_char(per.day, 'YYYY-MM-DD') AS day, per.key, per.leases, per."secondsHeld",
            GREATEST(per."atStart", COALESCE(peaks.peak, 0))::int AS "peakConcurrent"
       FROM per LEFT JOIN peaks ON peaks.day = per.day AND peaks.key IS NOT DISTINCT FROM per.key
      ORDER BY per.day DESC, per."secondsHeld" DESC, per.key NULLS LAST
      LIMIT 5000`,
    [licenseId, since.toISOString(), now.toISOString()],
  );
}
