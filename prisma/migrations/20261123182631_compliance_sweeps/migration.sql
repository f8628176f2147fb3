-- CreateTable
CREATE TABLE "ComplianceLeadTime" (
    "tenantId" UUID NOT NULL,
    "scope" TEXT NOT NULL,
    "days" INTEGER[],
    "updatedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "ComplianceLeadTime_pkey" PRIMARY KEY ("tenantId","scope")
);

-- CreateTable
CREATE TABLE "ComplianceSettings" (
    "tenantId" UUID NOT NULL,
    "heartbeatTolerancePercent" INTEGER NOT NULL,
    "updatedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "ComplianceSettings_pkey" PRIMARY KEY ("tenantId")
);

-- CreateTable
CREATE TABLE "ComplianceAlert" (
    "tenantId" UUID NOT NULL,
    "kind" TEXT NOT NULL,
    "subjectId" UUID NOT NULL,
    "at" TIMESTAMP(3) NOT NULL,
    "days" INTEGER NOT NULL DEFAULT 0,
    "raisedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "ComplianceAlert_pkey" PRIMARY KEY ("subjectId","kind","at","days")
);

-- CreateIndex
CREATE INDEX "ComplianceAlert_tenantId_idx" ON "ComplianceAlert"("tenantId");

-- CreateIndex
CREATE INDEX "License_expiresAt_idx" ON "License"("expiresAt");

