-- The webhook attempts in flight (claimed, not recorded yet), which the dispatcher counts per endpoint and
-- per tenant at every claim, across instances. A partial index (written by hand: Prisma cannot express one)
-- holds only those rows, a few per endpoint, however long the delivery log grows.
CREATE INDEX "WebhookDelivery_in_flight_idx" ON "WebhookDelivery"("tenantId", "endpointId") WHERE "claimToken" IS NOT NULL;
