-- CreateEnum
CREATE TYPE "LeaseStatus" AS ENUM ('ACTIVE', 'RELEASED', 'EXPIRED');

-- CreateEnum
CREATE TYPE "UsageTicketStatus" AS ENUM ('AUTHORIZED', 'COMMITTED', 'RELEASED', 'EXPIRED');

-- CreateTable
CREATE TABLE "Lease" (
    "id" UUID NOT NULL,
    "tenantId" UUID NOT NULL,
    "licenseId" UUID NOT NULL,
    "holder" TEXT NOT NULL,
    "fingerprint" TEXT NOT NULL,
    "user" TEXT,
    "status" "LeaseStatus" NOT NULL DEFAULT 'ACTIVE',
    "borrowed" BOOLEAN NOT NULL DEFAULT false,
    "grantedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "renewedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "expiresAt" TIMESTAMP(3) NOT NULL,
    "endedAt" TIMESTAMP(3),
    "activeHolder" TEXT,

    CONSTRAINT "Lease_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "SeatQueueEntry" (
    "id" UUID NOT NULL,
    "tenantId" UUID NOT NULL,
    "licenseId" UUID NOT NULL,
    "holder" TEXT NOT NULL,
    "fingerprint" TEXT NOT NULL,
    "user" TEXT,
    "enqueuedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "expiresAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "SeatQueueEntry_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "SeatUsageDay" (
    "licenseId" UUID NOT NULL,
    "day" TEXT NOT NULL,
    "tenantId" UUID NOT NULL,
    "peak" INTEGER NOT NULL DEFAULT 0,
    "granted" INTEGER NOT NULL DEFAULT 0,
    "denials" INTEGER NOT NULL DEFAULT 0,

    CONSTRAINT "SeatUsageDay_pkey" PRIMARY KEY ("licenseId","day")
);

-- CreateTable
CREATE TABLE "UsageBalance" (
    "licenseId" UUID NOT NULL,
    "meter" TEXT NOT NULL,
    "window" TEXT NOT NULL,
    "tenantId" UUID NOT NULL,
    "quota" INTEGER NOT NULL,
    "used" INTEGER NOT NULL DEFAULT 0,
    "reserved" INTEGER NOT NULL DEFAULT 0,
    "updatedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "UsageBalance_pkey" PRIMARY KEY ("licenseId","meter","window")
);

-- CreateTable
CREATE TABLE "UsageTicket" (
    "id" UUID NOT NULL,
    "tenantId" UUID NOT NULL,
    "licenseId" UUID NOT NULL,
    "meter" TEXT NOT NULL,
    "window" TEXT NOT NULL,
    "fingerprint" TEXT,
    "idempotencyKey" TEXT NOT NULL,
    "requestHash" TEXT NOT NULL,
    "quantity" INTEGER NOT NULL,
    "committed" INTEGER,
    "status" "UsageTicketStatus" NOT NULL,
    "remaining" INTEGER,
    "receipt" TEXT NOT NULL,
    "expiresAt" TIMESTAMP(3),
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "endedAt" TIMESTAMP(3),

    CONSTRAINT "UsageTicket_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "UsageLedgerEntry" (
    "id" BIGSERIAL NOT NULL,
    "tenantId" UUID NOT NULL,
    "licenseId" UUID NOT NULL,
    "meter" TEXT NOT NULL,
    "window" TEXT NOT NULL,
    "quantity" INTEGER NOT NULL,
    "ticketId" UUID NOT NULL,
    "recordedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "UsageLedgerEntry_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "Lease_licenseId_status_expiresAt_idx" ON "Lease"("licenseId", "status", "expiresAt");

-- CreateIndex
CREATE INDEX "Lease_status_expiresAt_idx" ON "Lease"("status", "expiresAt");

-- CreateIndex
CREATE INDEX "Lease_tenantId_grantedAt_idx" ON "Lease"("tenantId", "grantedAt");

-- CreateIndex
CREATE UNIQUE INDEX "Lease_licenseId_activeHolder_key" ON "Lease"("licenseId", "activeHolder");

-- CreateIndex
CREATE INDEX "SeatQueueEntry_licenseId_enqueuedAt_idx" ON "SeatQueueEntry"("licenseId", "enqueuedAt");

-- CreateIndex
CREATE INDEX "SeatQueueEntry_expiresAt_idx" ON "SeatQueueEntry"("expiresAt");

-- CreateIndex
CREATE UNIQUE INDEX "SeatQueueEntry_licenseId_holder_key" ON "SeatQueueEntry"("licenseId", "holder");

-- CreateIndex
CREATE INDEX "SeatUsageDay_tenantId_day_idx" ON "SeatUsageDay"("tenantId", "day");

-- CreateIndex
CREATE INDEX "UsageBalance_tenantId_idx" ON "UsageBalance"("tenantId");

-- CreateIndex
CREATE INDEX "UsageTicket_status_expiresAt_idx" ON "UsageTicket"("status", "expiresAt");

-- CreateIndex
CREATE INDEX "UsageTicket_licenseId_meter_window_idx" ON "UsageTicket"("licenseId", "meter", "window");

-- CreateIndex
CREATE UNIQUE INDEX "UsageTicket_licenseId_idempotencyKey_key" ON "UsageTicket"("licenseId", "idempotencyKey");

-- CreateIndex
CREATE UNIQUE INDEX "UsageLedgerEntry_ticketId_key" ON "UsageLedgerEntry"("ticketId");

-- CreateIndex
CREATE INDEX "UsageLedgerEntry_licenseId_meter_window_idx" ON "UsageLedgerEntry"("licenseId", "meter", "window");

-- CreateIndex
CREATE INDEX "UsageLedgerEntry_tenantId_recordedAt_idx" ON "UsageLedgerEntry"("tenantId", "recordedAt");

