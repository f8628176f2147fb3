-- DropIndex
DROP INDEX "Customer_tenantId_name_idx";

-- DropIndex
DROP INDEX "License_tenantId_createdAt_idx";

-- DropIndex
DROP INDEX "WebhookEndpoint_tenantId_createdAt_idx";

-- DropIndex
DROP INDEX "WebhookDelivery_endpointId_createdAt_idx";

-- CreateIndex
CREATE UNIQUE INDEX "Customer_tenantId_name_id_key" ON "Customer"("tenantId", "name", "id");

-- CreateIndex
CREATE UNIQUE INDEX "License_tenantId_createdAt_id_key" ON "License"("tenantId", "createdAt", "id");

-- CreateIndex
CREATE UNIQUE INDEX "WebhookEndpoint_tenantId_createdAt_id_key" ON "WebhookEndpoint"("tenantId", "createdAt", "id");

-- CreateIndex
CREATE UNIQUE INDEX "WebhookDelivery_endpointId_createdAt_id_key" ON "WebhookDelivery"("endpointId", "createdAt", "id");

