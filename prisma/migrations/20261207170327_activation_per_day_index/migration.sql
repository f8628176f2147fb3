-- CreateIndex
CREATE INDEX "Activation_tenantId_activatedAt_idx" ON "Activation"("tenantId", "activatedAt");

