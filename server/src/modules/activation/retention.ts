import type { AppDeps } from '../../context.ts';

/*
 * Retention of the heartbeat time series. Every heartbeat adds a HeartbeatSample row (last seen,
 * version and OS over time), so 10,000 devices beating hourly add 240,000 rows a day: without a limit
 * the table outgrows everything else. Samples older than the retention period are deleted; what a
 * device is now (last seen, version, OS) lives on its Activation row and is never pruned, nor is the
 * audit log.
 *
 * Per tenant, a pass deletes the tenant's expired samples in batches of BATCH rows, each batch one
 * statement on the ("tenantId", at) index. The rows of a batch are picked FOR UPDATE SKIP LOCKED, so
 * instances pruning at the same time take different rows and none waits on another; a row deleted
 * twice is impossible, a row missed is taken by the next pass.
 */

const BATCH = 10_000;
/** Per tenant and pass: catching up on a large backlog is spread over several passes. */
const MAX_BATCHES = 10;
/** How often each instance prunes. */
export const PRUNE_EVERY_MS = 10 * 60_000;

const DAY_MS = 86_400_000;

const PRUNE = `
  WITH d AS (
    DELETE FROM "HeartbeatSample" WHERE id IN (
      SELECT id FROM "HeartbeatSample" WHERE "tenantId" = $1::uuid AND at < $2::timestamp
       LIMIT ${BATCH} FOR UPDATE SKIP LOCKED)
    RETURNING 1
  )
  SELECT count(*)::int AS n FROM d`;

/**
 * Idempotency records (activation's and seat checkout's) answer retries of one request for this long (Stripe keeps keys a day);
 * past it a key is forgotten, and a retry is decided afresh (a device already live is reused, so it
 * still consumes nothing). Without expiry every keyed activation would leave its row forever.
 */
export const IDEMPOTENCY_RETENTION_MS = 24 * 3_600_000;

const EXPIRE_IDEMPOTENCY = `
  WITH d AS (
    DELETE FROM "IdempotencyRecord" WHERE ("tenantId", scope, key) IN (
      SELECT "tenantId", scope, key FROM "IdempotencyRecord" WHERE "createdAt" < $1::timestamp
       ORDER BY "createdAt" LIMIT ${BATCH} FOR UPDATE SKIP LOCKED)
    RETURNING 1
  )
  SELECT count(*)::int AS n FROM d`;

/** Deletes the idempotency records made before `before`, in batches on the createdAt index; returns how many. */
export async function expireIdempotencyRecords(app: AppDeps, before: Date): Promise<number> {
  let total = 0;
  for (let i = 0; i < MAX_BATCHES; i++) {
    const [row] = await app.db.sql.query<{ n: number }>(EXPIRE_IDEMPOTENCY, [before.toISOString()], 'tessera_expire_idempotency');
    const n = row?.n ?? 0;
    total += n;
    if (n < BATCH) break;
  }
  return total;
}

/** Deletes the heartbeat samples taken before `before`, every tenant; returns how many. */
export async function pruneHeartbeats(app: AppDeps, before: Date): Promise<number> {
  const tenants = await app.db.sql.query<{ id: string }>(`SELECT id::text AS id FROM "Tenant" ORDER BY id`);
  let total = 0;
  for (const { id } of tenants) {
    for (let i = 0; i < MAX_BATCHES; i++) {
      const [row] = await app.db.sql.query<{ n: number }>(PRUNE, [id, before.toISOString()], 'tessera_prune_heartbeats');
      const n = row?.n ?? 0;
      total += n;
      if (n < BATCH) break;
    }
  }
  return total;
}

export interface HeartbeatPruning {
  stop(): Promise<void>;
}

/**
 * Prunes samples older than `retentionDays` now and every PRUNE_EVERY_MS (0 days: samples are kept
 * forever), and expires idempotency records past IDEMPOTENCY_RETENTION_MS. Safe on several instances.
 */
export function startHeartbeatPruning(
  app: AppDeps,
  retentionDays: number,
  log: { pruned(count: number, before: Date): void; failed(err: Error): void },
  everyMs = PRUNE_EVERY_MS,
): HeartbeatPruning {
  let running: Promise<unknown> | undefined;
  let stopped = false;
  const pass = () => {
    if (running || stopped) return;
    const before = new Date(Date.now() - retentionDays * DAY_MS);
    running = (async () => {
      await expireIdempotencyRecords(app, new Date(Date.now() - IDEMPOTENCY_RETENTION_MS));
      return retentionDays > 0 ? pruneHeartbeats(app, before) : 0;
    })()
      .then((n) => {
        if (n > 0) log.pruned(n, before);
      })
      .catch((err: Error) => {
        if (!stopped) log.failed(err);
      })
      .finally(() => (running = undefined));
  };
  // The first pass waits a little: a start is busy enough with migrations and the audit sweep.
  const first = setTimeout(pass, Math.min(everyMs, 30_000));
  const timer = setInterval(pass, everyMs);
  first.unref();
  timer.unref();
  return {
    async stop() {
      stopped = true;
      clearTimeout(first);
      clearInterval(timer);
      await running;
    },
  };
}
