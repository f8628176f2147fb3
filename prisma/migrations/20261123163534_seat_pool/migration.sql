-- CreateTable
CREATE TABLE "SeatPool" (
    "licenseId" UUID NOT NULL,
    "tenantId" UUID NOT NULL,
    "used" INTEGER NOT NULL DEFAULT 0,
    "granted" BOOLEAN NOT NULL DEFAULT false,

    CONSTRAINT "SeatPool_pkey" PRIMARY KEY ("licenseId")
);

