import { Prisma } from '@tessera/db/client';
import { NotFoundError } from '../../errors.ts';
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
