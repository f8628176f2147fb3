-- CreateEnum
CREATE TYPE "ComplianceMetric" AS ENUM ('ACTIVATIONS', 'SEATS');

-- CreateTable
CREATE TABLE "ComplianceThreshold" (
    "tenantId" UUID NOT NULL,
    "scope" TEXT NOT NULL,
    "metric" "ComplianceMetric" NOT NULL,
    "percents" INTEGER[],
    "updatedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "ComplianceThreshold_pkey" PRIMARY KEY ("tenantId","scope","metric")
);

-- CreateTable
CREATE TABLE "ComplianceCrossing" (
    "tenantId" UUID NOT NULL,
    "licenseId" UUID NOT NULL,
    "metric" "ComplianceMetric" NOT NULL,
    "percent" INTEGER NOT NULL,
    "crossedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "ComplianceCrossing_pkey" PRIMARY KEY ("licenseId","metric","percent")
);

-- CreateIndex
CREATE INDEX "ComplianceCrossing_tenantId_idx" ON "ComplianceCrossing"("tenantId");

