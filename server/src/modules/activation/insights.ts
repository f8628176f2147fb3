import { Prisma } from '@tessera/db/client';
import { NotFoundError, ValidationError } from '../../errors.ts';
import type { ServiceContext } from '../audit/service.ts';

/*
 * Who runs what: the live devices of a tenant (or of one product) by the app version, platform and OS
 * version they last reported. Read from the Activation rows, which every heartbeat keeps current, so
 * the cost follows the number of devices, not of heartbeats (the time series is for one device's
 * history). One statement: the devices once, grouped three ways.
 */

/** Values listed per dimension; the devices of the rest are summed in `others`. */
export const TOP_VALUES = 20;
export const MAX_SEEN_WITHIN_DAYS = 365;

export interface DeviceShare {
  /** null: the devices did not report it. */
  value: string | null;
  devices: number;
}

export interface Breakdown {
  values: DeviceShare[];
  /** Devices whose value is not among `values`. */
  others: number;
}

export interface DeviceInsights {
  seenWithinDays: number;
  since: Date;
  /** ACTIVE activations heard from (a heartbeat, or their activation) since `since`. */
  devices: number;
  /** ACTIVE activations not heard from since `since`: still holding a seat. */
  silentDevices: number;
  appVersions: Breakdown;
  platforms: Breakdown;
  osVersions: Breakdown;
}

export async function deviceInsights(
  ctx: ServiceContext,
  tenantId: string,
  options: { productId: string | null; seenWithinDays: number; now?: Date },
): Promise<DeviceInsights> {
  const { productId, seenWithinDays } = options;
  const since = new Date((options.now ?? new Date()).getTime() - seenWithinDays * 86_400_000);
  if (productId && !(await ctx.prisma.product.findFirst({ where: { id: productId, tenantId }, select: { id: true } }))) {
    throw new NotFoundError('product');
  }
  const product = productId ? Prisma.sql`AND a."licenseId" IN (SELECT id FROM "License" WHERE "tenantId" = ${tenantId}::uuid AND "productId" = ${productId}::uuid)` : Prisma.empty;
  // GROUPING(...) tells the sets apart: 0b011 is the appVersion set, 0b101 platform, 0b110 osVersion, 0b111 the total.
  const rows = await ctx.prisma.$queryRaw<{ set: number; value: string | null; seen: number; silent: number }[]>`
    WITH d AS (
      SELECT a."appVersion", a.platform, a."osVersion", COALESCE(a."lastHeartbeatAt", a."activatedAt") >= ${since}::timestamp(3) AS seen
        FROM "Activation" a
       WHERE a."tenantId" = ${tenantId}::uuid AND a.status = 'ACTIVE' ${product}
    )
    SELECT GROUPING("appVersion", platform, "osVersion")::int AS set,
           COALESCE("appVersion", platform, "osVersion") AS value,
           (count(*) FILTER (WHERE seen))::int AS seen, (count(*) FILTER (WHERE NOT seen))::int AS silent
      FROM d
     GROUP BY GROUPING SETS (("appVersion"), (platform), ("osVersion"), ())`;
  const of = (set: number, versions: boolean): Breakdown => {
    const all = rows
      .filter((r) => r.set === set && r.seen > 0)
      .map((r) => ({ value: r.value, devices: r.seen }))
      .sort((x, y) => y.devices - x.devices || compareValues(x.value, y.value, versions));
    const values = all.slice(0, TOP_VALUES);
    return { values, others: all.slice(TOP_VALUES).reduce((n, v) => n + v.devices, 0) };
  };
  const total = rows.find((r) => r.set === 0b111);
  return {
    seenWithinDays,
    since,
    devices: total?.seen ?? 0,
    silentDevices: total?.silent ?? 0,
    appVersions: of(0b011, true),
    platforms: of(0b101, false),
    osVersions: of(0b110, true),
  };
}

/** Ties: versions newest first ("1.10" before "1.9"), names in alphabetical order, unreported last. */
function compareValues(a: string | null, b: string | null, versions: boolean): number {
  if (a === b) return 0;
  if (a === null) return 1;
  if (b === null) return -1;
  return versions ? b.localeCompare(a, 'en', { numeric: true }) : a.localeCompare(b, 'en', { numeric: true });
}

/*
 * Activations per day: the tenant's new activations (one Activation row per `activation.created` event;
 * rows are never deleted) counted per calendar day of a time zone, for the dashboard's chart. One
 * statement: a range scan of the ("tenantId", "activatedAt") index, grouped by local day.
 *
 * With the counts comes the feed cursor they are exact up to: the id of the tenant's newest sealed
 * event. Activations whose event is committed but not sealed yet (a moment after commit) are left out,
 * as the feed resumed after the cursor delivers them: counts plus the events of
 * `activity(after: cursor)` count every activation once.
 */

export const MAX_ACTIVATION_DAYS = 366;

export interface ActivationDay {
  /** YYYY-MM-DD in the time zone asked for. */
  date: string;
  activations: number;
}

export interface ActivationsPerDay {
  timeZone: string;
  days: ActivationDay[];
  /** The feed cursor the counts are exact up to; null while the tenant has no sealed event. */
  cursor: string | null;
}

/** An IANA time zone name both the JavaScript runtime and PostgreSQL know ("UTC", "Europe/Berlin"). */
export function isTimeZone(name: string): boolean {
  if (!/^[A-Za-z][A-Za-z0-9_+\-/]{0,63}$/.test(name)) return false;
  try {
    new Intl.DateTimeFormat('en', { timeZone: name });
    return true;
  } catch {
    return false;
  }
}

export async function activationsPerDay(
  ctx: ServiceContext,
  tenantId: string,
  options: { days: number; timeZone: string; now?: Date },
): Promise<ActivationsPerDay> {
  const { days, timeZone } = options;
  const now = options.now ?? new Date();
  const [row] = await ctx.prisma.$queryRaw<{ today: string; cursor: string | null; counts: { date: string; n: number }[] }[]>`
    WITH r AS (
      SELECT today, (((today - ${days - 1}::int)::timestamp AT TIME ZONE ${timeZone}) AT TIME ZONE 'UTC') AS lo,
             (((today + 1)::timestamp AT TIME ZONE ${timeZone}) AT TIME ZONE 'UTC') AS hi
        FROM (SELECT ((${now}::timestamp(3) AT TIME ZONE 'UTC') AT TIME ZONE ${timeZone})::date AS today) t
    ), pending AS (
      SELECT e."subjectId" FROM "AuditEvent" e
       WHERE e."tenantId" = ${tenantId}::uuid AND e.seq IS NULL AND e.type = 'activation.created'
    ), d AS (
      SELECT ((a."activatedAt" AT TIME ZONE 'UTC') AT TIME ZONE ${timeZone})::date AS day, count(*)::int AS n
        FROM "Activation" a
       WHERE a."tenantId" = ${tenantId}::uuid
         AND a."activatedAt" >= (SELECT lo FROM r) AND a."activatedAt" < (SELECT hi FROM r)
         AND NOT EXISTS (SELECT 1 FROM pending p WHERE p."subjectId" = a.id::text)
       GROUP BY 1
    )
    SELECT (SELECT today::text FROM r) AS today,
           (SELECT e.id::text FROM "AuditEvent" e JOIN "AuditChainHead" h ON h."tenantId" = e."tenantId" AND h.seq = e.seq
             WHERE e."tenantId" = ${tenantId}::uuid) AS cursor,
           COALESCE((SELECT json_agg(json_build_object('date', day::text, 'n', n)) FROM d), '[]'::json) AS counts`.catch((err: unknown) => {
    // A name the JavaScript runtime knows and this PostgreSQL does not (its time zone data is older).
    if (/time zone .* not recognized/.test(String((err as { message?: string })?.message ?? '') + String((err as { cause?: { message?: string } })?.cause?.message ?? ''))) {
      throw ValidationError.field('timeZone', 'is not a time zone the database knows');
    }
    throw err;
  });
  const counts = new Map(row!.counts.map((c) => [c.date, c.n]));
  const today = Date.parse(`${row!.today}T00:00:00Z`);
  const list = Array.from({ length: days }, (_, i) => {
    const date = new Date(today - (days - 1 - i) * 86_400_000).toISOString().slice(0, 10);
    return { date, activations: counts.get(date) ?? 0 };
  });
  return { timeZone, days: list, cursor: row!.cursor };
}
