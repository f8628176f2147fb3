import { type ComplianceMetric, Prisma } from '@tessera/db/client';
import { z } from 'zod';
import type { AppDeps } from '../../context.ts';
import { NotFoundError } from '../../errors.ts';
import type { DomainEvent } from '../audit/bus.ts';
import { sealerOf } from '../audit/chain.ts';
import { inTransaction, type ServiceContext, type Tx } from '../audit/service.ts';
import { parse } from '../common/validate.ts';
import { logFailure } from '../security/log.ts';

export const DEFAULT_THRESHOLDS = [80, 100];
/** Days before expiry at which `compliance.license_expiring` is raised, unless the tenant or license sets its own. */
export const DEFAULT_LEAD_DAYS = [30, 7, 1];
export const MAX_LEAD_DAYS = 365;
/** Silence allowed past `heartbeatSeconds` before a heartbeat timeout, in percent of it: one extra interval. */
export const DEFAULT_HEARTBEAT_TOLERANCE_PERCENT = 100;
const TENANT_SCOPE = '*';
/** Licenses read per statement by a summary. */
const SUMMARY_BATCH = 1000;
const SYSTEM = { type: 'system', id: 'compliance' };

export type ComplianceStatus = 'OK' | 'WARNING' | 'VIOLATION';

/** Events that can move a license's usage or caps; compliance's own events never re-trigger it. */
const USAGE_EVENT = /^(activation|lease|license|seat)\./;

interface Usage {
  licenseId: string;
  customerId: string | null;
  state: string;
  expiresAt: Date | null;
  activationsUsed: number;
  maxActivations: number | null;
  seatsInUse: number;
  seats: number | null;
}

/** Up to `take` licenses (oldest first), after the license `after` in that order, with their usage. */
async function usageOf(
  db: Tx | AppDeps['prisma'],
  tenantId: string,
  licenseIds?: string[],
  customerId?: string | null,
  page: { after?: string; take?: number } = {},
): Promise<Usage[]> {
  const licenses = await db.license.findMany({
    where: { tenantId, ...(licenseIds ? { id: { in: licenseIds } } : {}), ...(customerId ? { customerId } : {}) },
    select: { id: true, customerId: true, state: true, expiresAt: true, activationsUsed: true, maxActivations: true, seats: true },
    orderBy: [{ createdAt: 'asc' }, { id: 'asc' }],
    ...(page.after ? { cursor: { id: page.after }, skip: 1 } : {}),
    take: page.take ?? SUMMARY_BATCH,
  });
  if (!licenses.length) return [];
  const leases = await db.lease.groupBy({
    by: ['licenseId'],
    where: { tenantId, licenseId: { in: licenses.map((l) => l.id) }, status: 'ACTIVE', expiresAt: { gt: new Date() } },
    _count: { _all: true },
  });
  const inUse = new Map(leases.map((l) => [l.licenseId, l._count._all]));
  return licenses.map((l) => ({
    licenseId: l.id,
    customerId: l.customerId,
    state: l.state,
    expiresAt: l.expiresAt,
    activationsUsed: l.activationsUsed,
    maxActivations: l.maxActivations,
    seatsInUse: inUse.get(l.id) ?? 0,
    seats: l.seats,
  }));
}

/** Thresholds per metric for these licenses: the license's own, else the tenant default, else 80/100. */
async function thresholdsOf(db: Tx | AppDeps['prisma'], tenantId: string, licenseIds: string[]) {
  const rows = await db.complianceThreshold.findMany({ where: { tenantId, scope: { in: [TENANT_SCOPE, ...licenseIds] } } });
  return (licenseId: string, metric: ComplianceMetric): number[] =>
    rows.find((r) => r.scope === licenseId && r.metric === metric)?.percents ??
    rows.find((r) => r.scope === TENANT_SCOPE && r.metric === metric)?.percents ??
    DEFAULT_THRESHOLDS;
}

const metrics = (u: Usage): { metric: ComplianceMetric; used: number; cap: number | null }[] => [
  { metric: 'ACTIVATIONS', used: u.activationsUsed, cap: u.maxActivations },
  { metric: 'SEATS', used: u.seatsInUse, cap: u.seats },
];

/**
 * Brings the license's crossing rows in line with its usage, raising `compliance.threshold_crossed` when a
 * threshold is reached and `compliance.threshold_cleared` when usage falls back below it. The crossing row's
 * primary key makes each crossing fire once, whatever the instance; evaluations of one license are
 * serialised by an advisory lock (not the license row: activations never wait on this), and each reads
 * the usage after taking it, so the last evaluation always sees the last committed usage.
 */
export async function evaluateLicense(deps: AppDeps, tenantId: string, licenseId: string, requestId?: string | null): Promise<void> {
  if (!(await crossingsMayChange(deps, licenseId))) return;
  // The triggering event's request id, so an alert correlates with the request that caused it.
  const ctx: ServiceContext = { app: deps, prisma: deps.prisma, actor: { kind: 'operator', tenantId }, requestId: requestId ?? `compliance-${licenseId}` };
  await inTransaction(ctx, tenantId, async (tx, emit) => {
    await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtextextended(${`compliance:${licenseId}`}, 0))`;
    const [u] = await usageOf(tx, tenantId, [licenseId]);
    if (!u) return;
    const thresholds = await thresholdsOf(tx, tenantId, [licenseId]);
    const crossed = await tx.complianceCrossing.findMany({ where: { licenseId } });
    for (const { metric, used, cap } of metrics(u)) {
      const percents = thresholds(licenseId, metric);
      const reached = new Set(cap && cap > 0 ? percents.filter((p) => used * 100 >= p * cap) : []);
      const had = new Set(crossed.filter((c) => c.metric === metric).map((c) => c.percent));
      const base = { subjectType: 'License', subjectId: licenseId, licenseId, customerId: u.customerId, actor: SYSTEM };
      for (const percent of [...reached].filter((p) => !had.has(p)).sort((a, b) => a - b)) {
        const inserted = await tx.complianceCrossing.createMany({ data: [{ tenantId, licenseId, metric, percent }], skipDuplicates: true });
        if (inserted.count) emit({ ...base, type: 'compliance.threshold_crossed', payload: { metric, percent, used, cap } });
      }
      for (const percent of [...had].filter((p) => !reached.has(p)).sort((a, b) => b - a)) {
        const removed = await tx.complianceCrossing.deleteMany({ where: { licenseId, metric, percent } });
        if (removed.count) emit({ ...base, type: 'compliance.threshold_cleared', payload: { metric, percent, used, cap } });
      }
    }
  });
}

const CHECK = `
  SELECT l."activationsUsed" AS "activationsUsed", l."maxActivations" AS "maxActivations", l.seats,
         COALESCE((SELECT p.used FROM "SeatPool" p WHERE p."licenseId" = l.id), 0) AS "seatsInUse",
         COALESCE((SELECT json_agg(json_build_object('scope', t.scope, 'metric', t.metric, 'percents', t.percents)) FROM "ComplianceThreshold" t
                    WHERE t."tenantId" = l."tenantId" AND t.scope IN ($2, l.id::text)), '[]') AS thresholds,
         COALESCE((SELECT json_agg(json_build_object('metric', c.metric, 'percent', c.percent)) FROM "ComplianceCrossing" c WHERE c."licenseId" = l.id), '[]') AS crossed
    FROM "License" l WHERE l.id = $1::uuid`;

/**
 * One read-only statement: whether the license's crossing rows differ from what its usage reaches now.
 * Nearly every usage event leaves them as they are; only a change needs the locked transaction below.
 * Seats are read from the SeatPool counter rather than counted: it equals the live leases except for
 * lapsed ones the lease sweep has not reclaimed yet, whose reclaiming raises lease.expired and brings
 * the evaluation back (so a threshold cleared by lapsing is cleared at the sweep, not before).
 */
async function crossingsMayChange(deps: AppDeps, licenseId: string): Promise<boolean> {
  const [row] = await deps.db.sql.query<{
    activationsUsed: number;
    maxActivations: number | null;
    seats: number | null;
    seatsInUse: number;
    thresholds: { scope: string; metric: ComplianceMetric; percents: number[] }[];
    crossed: { metric: ComplianceMetric; percent: number }[];
  }>(CHECK, [licenseId, TENANT_SCOPE], 'tessera_compliance_check');
  if (!row) return false;
  const usage = { activationsUsed: row.activationsUsed, maxActivations: row.maxActivations, seatsInUse: row.seatsInUse, seats: row.seats } as Usage;
  for (const { metric, used, cap } of metrics(usage)) {
    const percents =
      row.thresholds.find((t) => t.scope === licenseId && t.metric === metric)?.percents ??
      row.thresholds.find((t) => t.scope === TENANT_SCOPE && t.metric === metric)?.percents ??
      DEFAULT_THRESHOLDS;
    const reached = new Set(cap && cap > 0 ? percents.filter((p) => used * 100 >= p * cap) : []);
    const had = new Set(row.crossed.filter((c) => c.metric === metric).map((c) => c.percent));
    if (reached.size !== had.size || [...reached].some((p) => !had.has(p))) return true;
  }
  return false;
}

const inFlight = new WeakMap<AppDeps, Map<string, { again: boolean; done: Promise<void> }>>();
/** Apps shutting down: their failed evaluations are not retried. */
const stopping = new WeakSet<AppDeps>();
const EVALUATION_TRIES = 5;

/**
 * Evaluates a license soon, on this instance: once per license at a time, and once more when asked
 * again meanwhile (the evaluation in flight may have read the usage before the change that asked).
 */
function scheduleEvaluation(deps: AppDeps, tenantId: string, licenseId: string, requestId?: string | null): void {
  const running = inFlight.get(deps);
  if (!running) return;
  const current = running.get(licenseId);
  if (current) {
    current.again = true;
    return;
  }
  const state = { again: false, done: Promise.resolve() };
  running.set(licenseId, state);
  state.done = (async () => {
    let failures = 0;
    try {
      do {
        state.again = false;
        try {
          await evaluateLicense(deps, tenantId, licenseId, requestId);
          failures = 0;
        } catch (err) {
          // A burst can keep every pooled connection busy past Prisma's wait for one, or the
          // database can be briefly away: the crossing would be missed until the license's next
          // usage event, so try again a few times, backing off, before giving up.
          if (++failures >= EVALUATION_TRIES || stopping.has(deps)) throw err;
          await new Promise((resolve) => setTimeout(resolve, 200 * failures));
          state.again = true;
        }
      } while (state.again);
    } catch (err) {
      logFailure(deps, 'compliance: evaluating a license failed', err, { licenseId });
    } finally {
      running.delete(licenseId);
    }
  })();
}

/** Re-evaluates the licenses named by sealed usage events; registered once per app. */
export function watchCompliance(deps: AppDeps): void {
  inFlight.set(deps, new Map());
  sealerOf(deps).onSealed((events: DomainEvent[]) => {
    const licenses = new Map<string, DomainEvent>();
    for (const e of events) if (e.licenseId && USAGE_EVENT.test(e.type)) licenses.set(e.licenseId, e);
    for (const [licenseId, { tenantId, requestId }] of licenses) scheduleEvaluation(deps, tenantId, licenseId, requestId);
  });
}

/** Resolves when no evaluation is in flight on this instance (tests, shutdown). */
/** Shutdown: no more retries, then waits for the evaluations in flight. */
export async function stopCompliance(deps: AppDeps): Promise<void> {
  stopping.add(deps);
  await complianceIdle(deps);
}

export async function complianceIdle(deps: AppDeps): Promise<void> {
  const running = inFlight.get(deps);
  while (running?.size) await Promise.all([...running.values()].map((r) => r.done));
}

const thresholdInput = z.object({
  metric: z.enum(['ACTIVATIONS', 'SEATS']),
  percents: z
    .array(z.number().int().min(1, 'at least 1').max(1000, 'at most 1000'))
    .max(10, 'at most 10 thresholds')
    .transform((p) => [...new Set(p)].sort((a, b) => a - b)),
});

/** Sets the thresholds of a license, or the tenant default when licenseId is null. */
export async function setThresholds(
  ctx: ServiceContext,
  tenantId: string,
  input: { licenseId: string | null; metric: string; percents: number[] },
) {
  const data = parse(thresholdInput, { metric: input.metric, percents: input.percents });
  const scope = input.licenseId ?? TENANT_SCOPE;
  const saved = await inTransaction(ctx, tenantId, async (tx, emit) => {
    if (input.licenseId) {
      const found = await tx.license.count({ where: { id: input.licenseId, tenantId } });
      if (!found) throw new NotFoundError('License');
    }
    const row = await tx.complianceThreshold.upsert({
      where: { tenantId_scope_metric: { tenantId, scope, metric: data.metric } },
      create: { tenantId, scope, metric: data.metric, percents: data.percents },
      update: { percents: data.percents, updatedAt: new Date() },
    });
    emit({
      type: 'compliance.thresholds_updated',
      subjectType: input.licenseId ? 'License' : 'Tenant',
      subjectId: input.licenseId ?? tenantId,
      licenseId: input.licenseId,
      payload: { metric: data.metric, percents: data.percents },
    });
    return row;
  });
  if (input.licenseId) await evaluateLicense(ctx.app, tenantId, input.licenseId);
  else {
    // The tenant's default changed: the licenses that follow it for this metric and have a cap and some
    // use, or crossings to clear, are evaluated in the background (the rest can cross nothing).
    const follow = await ctx.prisma.$queryRaw<{ id: string }[]>`
      SELECT l.id::text AS id FROM "License" l
       WHERE l."tenantId" = ${tenantId}::uuid
         AND NOT EXISTS (SELECT 1 FROM "ComplianceThreshold" t WHERE t."tenantId" = l."tenantId" AND t.scope = l.id::text AND t.metric = ${data.metric}::"ComplianceMetric")
         AND (${
           data.metric === 'ACTIVATIONS'
             ? Prisma.sql`l."activationsUsed" > 0 AND l."maxActivations" > 0`
             : Prisma.sql`l.seats > 0 AND EXISTS (SELECT 1 FROM "SeatPool" p WHERE p."licenseId" = l.id AND p.used > 0)`
         }
              OR EXISTS (SELECT 1 FROM "ComplianceCrossing" c WHERE c."licenseId" = l.id AND c.metric = ${data.metric}::"ComplianceMetric"))`;
    for (const { id } of follow) scheduleEvaluation(ctx.app, tenantId, id, ctx.requestId);
  }
  return saved;
}

export interface LicenseCompliance extends Usage {
  status: ComplianceStatus;
  reasons: string[];
  /** Devices past their heartbeat interval plus the tenant's tolerance, not reclaimed yet. */
  heartbeatTimeouts: number;
  expiringLeadDays: number[];
  crossed: { metric: ComplianceMetric; percent: number; crossedAt: Date }[];
  activationThresholds: number[];
  seatThresholds: number[];
}

export interface ComplianceSummary {
  status: ComplianceStatus;
  ok: number;
  warning: number;
  violation: number;
  licenses: LicenseCompliance[];
}

const RANK: Record<ComplianceStatus, number> = { OK: 0, WARNING: 1, VIOLATION: 2 };
/** Licenses a summary lists at most (its counts cover them all). */
export const MAX_LISTED = 1000;
const DAY_MS = 86_400_000;

/**
 * Compliance of the tenant's licenses, of one customer's, or of one license; the status is the worst one.
 * The counts and the status cover every license, read in batches; the list holds at most MAX_LISTED,
 * worst first (then oldest first), so a large tenant's violations are listed whatever their age.
 */
export async function complianceSummary(
  deps: AppDeps,
  tenantId: string,
  filter: { licenseId?: string | null; customerId?: string | null },
): Promise<ComplianceSummary> {
  const counts: Record<ComplianceStatus, number> = { OK: 0, WARNING: 0, VIOLATION: 0 };
  let listed: LicenseCompliance[] = [];
  let after: string | undefined;
  for (;;) {
    const usages = await usageOf(deps.prisma, tenantId, filter.licenseId ? [filter.licenseId] : undefined, filter.customerId, { after });
    const batch = await assess(deps, tenantId, usages);
    for (const l of batch) counts[l.status] += 1;
    // A stable sort: within one status, the licenses stay oldest first.
    listed = [...listed, ...batch].sort((a, b) => RANK[b.status] - RANK[a.status]).slice(0, MAX_LISTED);
    if (usages.length < SUMMARY_BATCH) break;
    after = usages[usages.length - 1]!.licenseId;
  }
  const status: ComplianceStatus = counts.VIOLATION ? 'VIOLATION' : counts.WARNING ? 'WARNING' : 'OK';
  return { status, ok: counts.OK, warning: counts.WARNING, violation: counts.VIOLATION, licenses: listed };
}

/** The compliance of one batch of licenses. */
async function assess(deps: AppDeps, tenantId: string, usages: Usage[]): Promise<LicenseCompliance[]> {
  if (!usages.length) return [];
  const ids = usages.map((u) => u.licenseId);
  const thresholds = await thresholdsOf(deps.prisma, tenantId, ids);
  const crossings = await deps.prisma.complianceCrossing.findMany({ where: { tenantId, licenseId: { in: ids } } });
  const leadDays = await leadDaysOf(deps.prisma, tenantId, ids);
  const lapsed = await heartbeatTimeoutsOf(deps, tenantId, ids);
  const now = Date.now();
  return usages.map((u): LicenseCompliance => {
    const reasons: string[] = [];
    let status: ComplianceStatus = 'OK';
    const raise = (s: ComplianceStatus, reason: string) => {
      if (RANK[s] > RANK[status]) status = s;
      reasons.push(reason);
    };
    // Checked in a fixed order, worst first: over a cap -> expired but in use -> thresholds -> expiring soon
    // -> heartbeat timeouts.
    for (const { metric, used, cap } of metrics(u)) {
      if (cap !== null && used > cap) raise('VIOLATION', `${metric} ${used} over the cap of ${cap}`);
    }
    if (u.expiresAt && u.expiresAt.getTime() <= now && u.activationsUsed > 0) raise('VIOLATION', 'expired with devices still activated');
    for (const { metric, used, cap } of metrics(u)) {
      const percents = thresholds(u.licenseId, metric);
      const lowest = Math.min(...percents);
      if (cap && cap > 0 && used <= cap && used * 100 >= lowest * cap) raise('WARNING', `${metric} at ${Math.round((used * 100) / cap)}% of ${cap}`);
    }
    // Inside any of its lead times, i.e. once the first compliance.license_expiring alert is due (30 days by
    // default); the reason names the smallest lead time it is inside.
    const leads = leadDays(u.licenseId);
    const left = u.expiresAt ? u.expiresAt.getTime() - now : null;
    const inside = left !== null && left > 0 ? leads.filter((d) => left <= d * DAY_MS) : [];
    if (inside.length) raise('WARNING', `expires within ${Math.min(...inside)} day${Math.min(...inside) === 1 ? '' : 's'}`);
    const timeouts = lapsed.get(u.licenseId) ?? 0;
    if (timeouts) raise('WARNING', `${timeouts} device${timeouts === 1 ? '' : 's'} past the heartbeat interval`);
    return {
      ...u,
      status,
      reasons,
      heartbeatTimeouts: timeouts,
      expiringLeadDays: leads,
      crossed: crossings.filter((c) => c.licenseId === u.licenseId).map((c) => ({ metric: c.metric, percent: c.percent, crossedAt: c.crossedAt })),
      activationThresholds: thresholds(u.licenseId, 'ACTIVATIONS'),
      seatThresholds: thresholds(u.licenseId, 'SEATS'),
    };
  });
}

// ---------------------------------------------------------------------------------------------
// Expiring-soon lead times and heartbeat tolerance (raised by sweeps.ts)

/** Lead days per license: the license's own, else the tenant's, else the defaults. An empty list is off. */
async function leadDaysOf(db: Tx | AppDeps['prisma'], tenantId: string, licenseIds: string[]) {
  const rows = await db.complianceLeadTime.findMany({ where: { tenantId, scope: { in: [TENANT_SCOPE, ...licenseIds] } } });
  const own = new Map(rows.map((r) => [r.scope, r.days]));
  return (licenseId: string): number[] => own.get(licenseId) ?? own.get(TENANT_SCOPE) ?? DEFAULT_LEAD_DAYS;
}

/**
 * An activation (alias a, its license l, the tenant's ComplianceSettings s) silent past its license's
 * heartbeat interval plus the tenant's tolerance. Offline-bound machines never heartbeat, and a
 * suspended, revoked or expired license refuses heartbeats, so neither counts as a lapse.
 */
export function lapsedSql(now: Date): Prisma.Sql {
  return Prisma.sql`a.status = 'ACTIVE' AND NOT a.offline
    AND l."heartbeatSeconds" IS NOT NULL AND l.state = 'ACTIVE' AND (l."expiresAt" IS NULL OR l."expiresAt" > ${now}::timestamp(3))
    AND COALESCE(a."lastHeartbeatAt", a."activatedAt") < ${now}::timestamp(3) - make_interval(secs =>
          (l."heartbeatSeconds" * (100 + COALESCE(s."heartbeatTolerancePercent", ${DEFAULT_HEARTBEAT_TOLERANCE_PERCENT}::int)) / 100.0)::float8)`;
}

/**
 * Whether a heartbeat at `now` ends a heartbeat timeout: the device, last seen at `seenBefore`, was silent
 * past its license's interval plus the tenant's tolerance (as lapsedSql counts it). The tolerance is read
 * only for a device silent longer than one interval.
 */
export async function endsHeartbeatTimeout(
  db: Tx | AppDeps['prisma'],
  tenantId: string,
  heartbeatSeconds: number | null,
  activation: { offline: boolean; seenBefore: Date },
  now: Date,
): Promise<boolean> {
  if (heartbeatSeconds === null || activation.offline) return false;
  const silentMs = now.getTime() - activation.seenBefore.getTime();
  if (silentMs <= heartbeatSeconds * 1000) return false;
  const settings = await db.complianceSettings.findUnique({ where: { tenantId } });
  return silentMs > (heartbeatSeconds * 1000 * (100 + (settings?.heartbeatTolerancePercent ?? DEFAULT_HEARTBEAT_TOLERANCE_PERCENT))) / 100;
}

async function heartbeatTimeoutsOf(deps: AppDeps, tenantId: string, licenseIds: string[], now = new Date()): Promise<Map<string, number>> {
  if (!licenseIds.length) return new Map();
  const rows = await deps.prisma.$queryRaw<{ licenseId: string; n: number }[]>`
    SELECT a."licenseId"::text AS "licenseId", count(*)::int AS n
      FROM "Activation" a
      JOIN "License" l ON l.id = a."licenseId"
      LEFT JOIN "ComplianceSettings" s ON s."tenantId" = a."tenantId"
     WHERE a."tenantId" = ${tenantId}::uuid AND a."licenseId" = ANY(${licenseIds}::uuid[]) AND ${lapsedSql(now)}
     GROUP BY 1`;
  return new Map(rows.map((r) => [r.licenseId, r.n]));
}

export interface ComplianceSettingsView {
  licenseId: string | null;
  expiringLeadDays: number[];
  /** False when a license inherits the tenant's lead days (or the tenant the defaults). */
  leadDaysOverridden: boolean;
  heartbeatTolerancePercent: number;
}

/** The settings in force for the tenant, or for one license (lead days can be set per license); null for another tenant's license. */
export async function complianceSettings(deps: AppDeps, tenantId: string, licenseId: string | null): Promise<ComplianceSettingsView | null> {
  if (licenseId && !(await deps.prisma.license.count({ where: { id: licenseId, tenantId } }))) return null;
  const scope = licenseId ?? TENANT_SCOPE;
  const [own, lead, settings] = await Promise.all([
    deps.prisma.complianceLeadTime.findUnique({ where: { tenantId_scope: { tenantId, scope } } }),
    leadDaysOf(deps.prisma, tenantId, licenseId ? [licenseId] : []),
    deps.prisma.complianceSettings.findUnique({ where: { tenantId } }),
  ]);
  return {
    licenseId,
    expiringLeadDays: licenseId ? lead(licenseId) : (own?.days ?? DEFAULT_LEAD_DAYS),
    leadDaysOverridden: !!own,
    heartbeatTolerancePercent: settings?.heartbeatTolerancePercent ?? DEFAULT_HEARTBEAT_TOLERANCE_PERCENT,
  };
}

const settingsInput = z
  .object({
    licenseId: z.string().nullable(),
    expiringLeadDays: z
      .array(z.number().int('must be whole days').min(1, 'must be at least 1 day').max(MAX_LEAD_DAYS, `must be at most ${MAX_LEAD_DAYS} days`))
      .max(10, 'at most 10 lead times')
      .transform((d) => [...new Set(d)].sort((a, b) => b - a))
      .nullish(),
    heartbeatTolerancePercent: z.number().int('must be a whole percent').min(0, 'must not be negative').max(1000, 'must be at most 1000 (ten extra intervals)').nullish(),
  })
  .superRefine((v, c) => {
    if (v.licenseId && v.heartbeatTolerancePercent != null) {
      c.addIssue({ code: 'custom', path: ['heartbeatTolerancePercent'], message: 'is set for the whole tenant; omit licenseId' });
    }
  });

/**
 * Sets the expiring-soon lead days (tenant default, or one license's when licenseId is given) and/or the
 * tenant's heartbeat tolerance; fields left out keep their value. Validated as a whole: bad input
 * changes nothing.
 */
export async function setComplianceSettings(
  ctx: ServiceContext,
  tenantId: string,
  input: { licenseId: string | null; expiringLeadDays?: number[] | null; heartbeatTolerancePercent?: number | null },
): Promise<ComplianceSettingsView> {
  const data = parse(settingsInput, input);
  const scope = data.licenseId ?? TENANT_SCOPE;
  await inTransaction(ctx, tenantId, async (tx, emit) => {
    if (data.licenseId) {
      const found = await tx.license.count({ where: { id: data.licenseId, tenantId } });
      if (!found) throw new NotFoundError('License');
    }
    const changed: Record<string, unknown> = {};
    if (data.expiringLeadDays) {
      await tx.complianceLeadTime.upsert({
        where: { tenantId_scope: { tenantId, scope } },
        create: { tenantId, scope, days: data.expiringLeadDays },
        update: { days: data.expiringLeadDays, updatedAt: new Date() },
      });
      changed.expiringLeadDays = data.expiringLeadDays;
    }
    if (data.heartbeatTolerancePercent != null) {
      await tx.complianceSettings.upsert({
        where: { tenantId },
        create: { tenantId, heartbeatTolerancePercent: data.heartbeatTolerancePercent },
        update: { heartbeatTolerancePercent: data.heartbeatTolerancePercent, updatedAt: new Date() },
      });
      changed.heartbeatTolerancePercent = data.heartbeatTolerancePercent;
    }
    if (!Object.keys(changed).length) return;
    emit({
      type: 'compliance.settings_updated',
      subjectType: data.licenseId ? 'License' : 'Tenant',
      subjectId: data.licenseId ?? tenantId,
      licenseId: data.licenseId,
      payload: changed,
    });
  });
  const saved = await complianceSettings(ctx.app, tenantId, data.licenseId);
  if (!saved) throw new NotFoundError('License');
  return saved;
}
