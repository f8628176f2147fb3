-- AlterTable
ALTER TABLE "Edition" ADD COLUMN     "archivedAt" TIMESTAMP(3);

