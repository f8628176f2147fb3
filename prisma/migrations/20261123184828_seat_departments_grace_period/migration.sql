-- AlterTable
ALTER TABLE "Edition" ADD COLUMN     "gracePeriodSeconds" INTEGER;

-- AlterTable
ALTER TABLE "License" ADD COLUMN     "gracePeriodSeconds" INTEGER;

-- AlterTable
ALTER TABLE "Lease" ADD COLUMN     "department" TEXT;

-- CreateIndex
CREATE INDEX "Lease_licenseId_grantedAt_idx" ON "Lease"("licenseId", "grantedAt");

