-- AlterTable
ALTER TABLE "Activation" ADD COLUMN     "devicePublicKey" JSONB;

-- CreateTable
CREATE TABLE "OfflineRequest" (
    "tenantId" UUID NOT NULL,
    "nonce" TEXT NOT NULL,
    "activationId" UUID NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "OfflineRequest_pkey" PRIMARY KEY ("tenantId","nonce")
);

-- CreateTable
CREATE TABLE "OfflineDeactivation" (
    "id" UUID NOT NULL,
    "tenantId" UUID NOT NULL,
    "activationId" UUID NOT NULL,
    "fileHash" TEXT NOT NULL,
    "usage" JSONB NOT NULL,
    "importedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "OfflineDeactivation_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "OfflineDeactivation_activationId_key" ON "OfflineDeactivation"("activationId");

-- CreateIndex
CREATE INDEX "OfflineDeactivation_tenantId_importedAt_idx" ON "OfflineDeactivation"("tenantId", "importedAt");

