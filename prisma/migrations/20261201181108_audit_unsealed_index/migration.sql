-- The sealer's queue: rows not chained yet (seq IS NULL), per tenant in id order. A partial index
-- (written by hand: Prisma cannot express one) stays as small as the queue, so finding them costs the
-- same however long the log is, and the plan cannot drift to a scan of the tenant's whole log.
CREATE INDEX "AuditEvent_unsealed_idx" ON "AuditEvent"("tenantId", "id") WHERE "seq" IS NULL;

-- It replaces this one, which served the same lookups from an index over every row.
DROP INDEX "AuditEvent_seq_occurredAt_idx";
