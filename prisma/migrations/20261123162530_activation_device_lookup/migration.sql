-- CreateIndex
CREATE INDEX "Activation_licenseId_fingerprint_activatedAt_idx" ON "Activation"("licenseId", "fingerprint", "activatedAt");

