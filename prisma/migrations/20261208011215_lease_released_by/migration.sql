-- AlterTable
ALTER TABLE "Lease" ADD COLUMN     "releasedBy" TEXT;

