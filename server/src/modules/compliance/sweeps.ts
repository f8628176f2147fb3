import { Prisma } from '@tessera/db/client';
import type { AppDeps } from '../../context.ts';
import { sealerOf } from '../audit/chain.ts';
import { inTransaction, type ServiceContext, type Tx } from '../audit/service.ts';
import { DEFAULT_LEAD_DAYS, lapsedSql, MAX_LEAD_DAYS } from './service.ts';
import { logFailure } from '../security/log.ts';

const SYSTEM = { type: 'system', id: 'compliance' };
const REQUEST_ID = 'compliance-sweep';
/**
 * How long after its expiry a license can still raise `compliance.license_expired`: long enough to
 * cover a sweep outage, short enough that importing old licenses (or deploying this sweep) does not
 * flood the feed with expiries from years ago.
 */
export const EXPIRED_LOOKBACK_DAYS = 7;
/** Alert rows that can no longer fire are pruned this long after they were raised (see pruneAlerts). */
const PRUNE_AFTER = Prisma.sql`interval '1 hour'`;

type Scope = { tenantId: string } | null;
const within = (scope: Scope, column: Prisma.Sql) => (scope ? Prisma.sql`${column} = ${scope.tenantId}::uuid` : Prisma.sql`TRUE`);
const ts = (d: Date) => Prisma.sql`${d}::timestamp(3)`;

/**
 * Licenses inside one of their expiring-soon lead times, each with the smallest lead time it is inside
 * (a license issued 5 days before its expiry raises the 7-day alert, not the 30- and 7-day ones at once).
 * The license's own lead times win over the tenant's, which win over the defaults; an empty list is off.
 */
function expiringCandidates(now: Date, scope: Scope): Prisma.Sql {
  return Prisma.sql`
    SELECT * FROM (
      SELECT l."tenantId", l.id AS "subjectId", l."expiresAt" AS at,
             (SELECT min(d) FROM unnest(COALESCE(own.days, tenant.days, ${Prisma.raw(`ARRAY[${DEFAULT_LEAD_DAYS.join(',')}]`)}::int[])) d
               WHERE l."expiresAt" <= ${ts(now)} + make_interval(days => d)) AS days
        FROM "License" l
        LEFT JOIN "ComplianceLeadTime" own ON own."tenantId" = l."tenantId" AND own.scope = l.id::text
        LEFT JOIN "ComplianceLeadTime" tenant ON tenant."tenantId" = l."tenantId" AND tenant.scope = '*'
       WHERE ${within(scope, Prisma.sql`l."tenantId"`)} AND l.state <> 'REVOKED'
         AND l."expiresAt" > ${ts(now)} AND l."expiresAt" <= ${ts(now)} + make_interval(days => ${MAX_LEAD_DAYS}::int)
    ) c WHERE c.days IS NOT NULL`;
}

function expiredCandidates(now: Date, scope: Scope): Prisma.Sql {
  return Prisma.sql`
    SELECT l."tenantId", l.id AS "subjectId", l."expiresAt" AS at, 0 AS days
      FROM "License" l
     WHERE ${within(scope, Prisma.sql`l."tenantId"`)} AND l.state <> 'REVOKED'
       AND l."expiresAt" <= ${ts(now)} AND l."expiresAt" > ${ts(now)} - make_interval(days => ${EXPIRED_LOOKBACK_DAYS}::int)`;
}

function lapsedCandidates(now: Date, scope: Scope): Prisma.Sql {
  return Prisma.sql`
    SELECT a."tenantId", a.id AS "subjectId", COALESCE(a."lastHeartbeatAt", a."activatedAt") AS at, 0 AS days
      FROM "Activation" a
      JOIN "License" l ON l.id = a."licenseId"
      LEFT JOIN "ComplianceSettings" s ON s."tenantId" = a."tenantId"
     WHERE ${within(scope, Prisma.sql`a."tenantId"`)} AND ${lapsedSql(now)}`;
}

const iso = (column: string) => Prisma.raw(`to_char(${column}, 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`);

/**
 * Per kind: the candidates, the event type, and the event of each raised alert row (r) as
 * (subjectType, subjectId, licenseId, customerId, payload), read from the tables by primary key rather
 * than joined back to the candidates (the planner cannot estimate a data-modifying CTE and would nest
 * loops over 10,000 x 10,000 rows).
 */
const KINDS = {
  expiring: {
    candidates: expiringCandidates,
    type: 'compliance.license_expiring',
    events: (now: Date) => Prisma.sql`
      SELECT r.at, 'License' AS "subjectType", l.id AS "subjectId", l.id AS "licenseId", l."customerId",
             jsonb_build_object('licenseId', l.id, 'customerId', l."customerId", 'expiresAt', ${iso('r.at')},
               'daysLeft', ceil(extract(epoch FROM r.at - ${ts(now)}) / 86400)::int, 'leadDays', r.days) AS payload
        FROM raised r JOIN "License" l ON l.id = r."subjectId"`,
  },
  expired: {
    candidates: expiredCandidates,
    type: 'compliance.license_expired',
    events: () => Prisma.sql`
      SELECT r.at, 'License' AS "subjectType", l.id AS "subjectId", l.id AS "licenseId", l."customerId",
             jsonb_build_object('licenseId', l.id, 'customerId', l."customerId", 'expiresAt', ${iso('r.at')},
               'daysLeft', 0, 'activationsUsed', l."activationsUsed") AS payload
        FROM raised r JOIN "License" l ON l.id = r."subjectId"`,
  },
  heartbeat_timeout: {
    candidates: lapsedCandidates,
    type: 'compliance.heartbeat_timeout',
    events: (now: Date) => Prisma.sql`
      SELECT r.at, 'Activation' AS "subjectType", a.id AS "subjectId", a."licenseId", l."customerId",
             jsonb_build_object('activationId', a.id, 'fingerprint', a.fingerprint, 'hostname', a.hostname,
               'lastSeenAt', ${iso('r.at')}, 'heartbeatSeconds', l."heartbeatSeconds",
               'silentSeconds', floor(extract(epoch FROM ${ts(now)} - r.at))::int) AS payload
        FROM raised r JOIN "Activation" a ON a.id = r."subjectId" JOIN "License" l ON l.id = a."licenseId"`,
  },
} as const;
type Kind = keyof typeof KINDS;

/** Alerts raised per statement; a tenant with more goes round again (a short batch means it is done). */
const BATCH = 10_000;

/**
 * Inserts up to BATCH alert rows of one kind that are due and not raised yet, and their events into the
 * audit log, in one statement: the primary key of ComplianceAlert decides, so of N instances sweeping at
 * once exactly one writes each event. Rows go in key order, so two sweeps that do overlap wait on each
 * other in the same order instead of deadlocking. Returns how many were raised.
 */
async function raise(tx: Tx, kind: Kind, now: Date, tenantId: string): Promise<number> {
  const k = KINDS[kind];
  const [row] = await tx.$queryRaw<{ n: number }[]>`
    WITH raised AS (
      INSERT INTO "ComplianceAlert" ("tenantId", kind, "subjectId", at, days)
      SELECT "tenantId", ${kind}::text, "subjectId", at, days FROM (${k.candidates(now, { tenantId })}) c
       WHERE NOT EXISTS (SELECT 1 FROM "ComplianceAlert" x
                          WHERE x."subjectId" = c."subjectId" AND x.kind = ${kind}::text AND x.at = c.at AND x.days = c.days)
       ORDER BY "subjectId", at, days
       LIMIT ${BATCH}
      ON CONFLICT DO NOTHING
      RETURNING "subjectId", at, days
    ), e AS (${k.events(now)}),
    audit AS (
      INSERT INTO "AuditEvent" ("tenantId", type, "actorType", "actorId", "subjectType", "subjectId", "licenseId", "customerId", payload, "requestId")
      SELECT ${tenantId}::uuid, ${k.type}::text, ${SYSTEM.type}::text, ${SYSTEM.id}::text, "subjectType", "subjectId"::text, "licenseId", "customerId", payload, ${REQUEST_ID}::text
        FROM e ORDER BY at, "subjectId"
    )
    SELECT count(*)::int AS n FROM e`;
  return row?.n ?? 0;
}

/** Tenants with at least one alert due and not raised yet (one set-based statement over all tenants). */
async function tenantsWithWork(deps: AppDeps, now: Date): Promise<string[]> {
  const pending = (kind: Kind) => Prisma.sql`
    SELECT c."tenantId" FROM (${KINDS[kind].candidates(now, null)}) c
     WHERE NOT EXISTS (SELECT 1 FROM "ComplianceAlert" x
                        WHERE x."subjectId" = c."subjectId" AND x.kind = ${kind}::text AND x.at = c.at AND x.days = c.days)`;
  const rows = await deps.prisma.$queryRaw<{ tenantId: string }[]>`
    SELECT DISTINCT "tenantId"::text AS "tenantId" FROM (
      ${pending('expiring')} UNION ALL ${pending('expired')} UNION ALL ${pending('heartbeat_timeout')}
    ) t`;
  return rows.map((r) => r.tenantId);
}

/**
 * Deletes alert rows that can never fire again (the activation heartbeated or left, the license was
 * renewed or expired long ago), so the table stays the size of what is currently lapsed or expiring.
 * Only rows raised a while ago: a concurrent sweep's statement that still sees the old state could
 * otherwise re-insert a row deleted under it.
 */
async function pruneAlerts(deps: AppDeps, now: Date): Promise<void> {
  await deps.prisma.$executeRaw`
    DELETE FROM "ComplianceAlert" x
     WHERE x."raisedAt" < now() - ${PRUNE_AFTER} AND (
       (x.kind = 'heartbeat_timeout' AND NOT EXISTS (
          SELECT 1 FROM "Activation" a WHERE a.id = x."subjectId" AND a.status = 'ACTIVE'
             AND COALESCE(a."lastHeartbeatAt", a."activatedAt") = x.at))
       OR (x.kind IN ('expiring', 'expired') AND (
          x.at <= ${ts(now)} - make_interval(days => ${EXPIRED_LOOKBACK_DAYS}::int)
          OR NOT EXISTS (SELECT 1 FROM "License" l WHERE l.id = x."subjectId" AND l."expiresAt" = x.at))))`;
}

export interface SweepResult {
  expiring: number;
  expired: number;
  heartbeatTimeouts: number;
}

/**
 * Raises `compliance.license_expiring` (once per license, expiry date and lead time),
 * `compliance.license_expired` (once per license and expiry date) and `compliance.heartbeat_timeout`
 * (once per activation and lapse). Safe on N instances at once: the alert row's insert decides who
 * raises, and an instance that finds another sweeping a tenant skips it (that one covers the same rows).
 * One transaction per tenant with due alerts; every step is set-based, whatever the number of rows.
 *
 * The events are written by the same statements as the alert rows (as the lease sweep does), not through
 * inTransaction's emit: 10,000 events through Prisma's createMany took longer than a transaction may
 * stay open on PostgreSQL. They are sealed into the tenant's chain and published after commit, as
 * inTransaction does for emitted ones.
 */
export async function sweepCompliance(deps: AppDeps, now = new Date()): Promise<SweepResult> {
  const total: SweepResult = { expiring: 0, expired: 0, heartbeatTimeouts: 0 };
  const ctx: ServiceContext = { app: deps, prisma: deps.prisma, actor: { kind: 'anonymous' }, requestId: REQUEST_ID };
  for (const tenantId of await tenantsWithWork(deps, now)) {
    for (;;) {
      const done = await inTransaction(ctx, tenantId, async (tx) => {
        // Another instance sweeping this tenant right now covers the same rows: skip it rather than queue.
        const [lock] = await tx.$queryRaw<{ locked: boolean }[]>`
          SELECT pg_try_advisory_xact_lock(hashtextextended(${`compliance-sweep:${tenantId}`}, 0)) AS locked`;
        if (!lock?.locked) return null;
        return {
          expiring: await raise(tx, 'expiring', now, tenantId),
          expired: await raise(tx, 'expired', now, tenantId),
          heartbeatTimeouts: await raise(tx, 'heartbeat_timeout', now, tenantId),
        };
      });
      if (!done) break;
      total.expiring += done.expiring;
      total.expired += done.expired;
      total.heartbeatTimeouts += done.heartbeatTimeouts;
      if (done.expiring + done.expired + done.heartbeatTimeouts) void sealerOf(deps).seal(tenantId);
      if (Math.max(done.expiring, done.expired, done.heartbeatTimeouts) < BATCH) break;
    }
  }
  await pruneAlerts(deps, now);
  return total;
}

export interface ComplianceSweeper {
  /** One sweep now (tests call this with a chosen `now`). */
  runOnce(now?: Date): Promise<SweepResult>;
  stop(): Promise<void>;
}

/**
 * Sweeps every `everyMs` (0: never; runOnce still works); a run never overlaps the previous one on this
 * instance; failures are retried next time.
 */
export function startComplianceSweeps(deps: AppDeps, everyMs: number): ComplianceSweeper {
  let running: Promise<unknown> | undefined;
  let stopped = false;
  const tick = () => {
    if (running || stopped) return;
    running = sweepCompliance(deps)
      .catch((err) => {
        if (!stopped) logFailure(deps, 'compliance: sweep failed', err);
      })
      .finally(() => (running = undefined));
  };
  const timer = everyMs > 0 ? setInterval(tick, everyMs) : undefined;
  timer?.unref();
  return {
    runOnce: (now) => sweepCompliance(deps, now),
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
