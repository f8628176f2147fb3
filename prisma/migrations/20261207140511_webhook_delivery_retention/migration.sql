-- CreateIndex
CREATE INDEX "WebhookDelivery_completedAt_idx" ON "WebhookDelivery"("completedAt");

