import type { AppDeps } from '../../context.ts';

/*
 * Retention of the delivery log. Every event an endpoint subscribes to adds a WebhookDelivery row and an
 * attempt row per try, so a busy tenant adds thousands a day: kept for ever, the log outgrows everything
 * else. Deliveries that are over (SUCCEEDED, or FAILED after their last attempt) and completed before the
 * retention period are deleted with their attempts (ON DELETE CASCADE); a PENDING one, waiting or retrying
 * or in flight, is never touched, whatever its age. The audit log, which the events came from, is kept.
 *
 * A pass deletes in batches of BATCH deliveries, each one short statement on the completedAt index, so a
 * large backlog never holds a long transaction. The rows of a batch are picked FOR UPDATE SKIP LOCKED:
 * instances pruning at the same time take different rows and none waits on another (nor on a replay
 * reading its original); a row missed is taken by the next pass.
 */

const BATCH = 1_000;
/** Per pass: catching up on a large backlog is spread over several passes. */
const MAX_BATCHES = 20;
/** How often each instance prunes. */
export const PRUNE_EVERY_MS = 10 * 60_000;
export const DAY_MS = 86_400_000;

const PRUNE = `
  WITH d AS (
    DELETE FROM "WebhookDelivery" WHERE id IN (
      SELECT id FROM "WebhookDelivery" WHERE "completedAt" < $1::timestamp AND status IN ('SUCCEEDED', 'FAILED')
       ORDER BY "completedAt" LIMIT ${BATCH} FOR UPDATE SKIP LOCKED)
    RETURNING 1
  )
  SELECT count(*)::int AS n FROM d`;

/** Deletes the deliveries (and their attempts) that were over before `before`; returns how many. */
export async function pruneDeliveries(app: AppDeps, before: Date): Promise<number> {
  let total = 0;
  for (let i = 0; i < MAX_BATCHES; i++) {
    const [row] = await app.db.sql.query<{ n: number }>(PRUNE, [before.toISOString()], 'tessera_prune_webhook_deliveries');
    const n = row?.n ?? 0;
    total += n;
    if (n < BATCH) break;
  }
  return total;
}
