-- AlterTable
ALTER TABLE "Activation" ADD COLUMN     "activeFingerprint" TEXT;

-- CreateTable
CREATE TABLE "HeartbeatSample" (
    "id" BIGSERIAL NOT NULL,
    "tenantId" UUID NOT NULL,
    "licenseId" UUID NOT NULL,
    "activationId" UUID NOT NULL,
    "at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "appVersion" TEXT,
    "osVersion" TEXT,
    "platform" TEXT,

    CONSTRAINT "HeartbeatSample_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "HeartbeatSample_activationId_at_idx" ON "HeartbeatSample"("activationId", "at");

-- CreateIndex
CREATE INDEX "HeartbeatSample_tenantId_at_idx" ON "HeartbeatSample"("tenantId", "at");

-- CreateIndex
CREATE UNIQUE INDEX "Activation_licenseId_activeFingerprint_key" ON "Activation"("licenseId", "activeFingerprint");

-- AddForeignKey
ALTER TABLE "HeartbeatSample" ADD CONSTRAINT "HeartbeatSample_activationId_fkey" FOREIGN KEY ("activationId") REFERENCES "Activation"("id") ON DELETE CASCADE ON UPDATE CASCADE;

