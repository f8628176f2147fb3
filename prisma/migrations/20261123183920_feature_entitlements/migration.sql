-- AlterTable
ALTER TABLE "Edition" ADD COLUMN     "entitlements" JSONB NOT NULL DEFAULT '[]';

-- AlterTable
ALTER TABLE "License" ADD COLUMN     "entitlements" JSONB NOT NULL DEFAULT '[]';

