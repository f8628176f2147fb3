-- CreateEnum
CREATE TYPE "WebhookDisabledReason" AS ENUM ('MANUAL', 'DELIVERY_FAILURES');

-- AlterTable
ALTER TABLE "WebhookEndpoint" ADD COLUMN     "consecutiveFailures" INTEGER NOT NULL DEFAULT 0,
ADD COLUMN     "disabledAt" TIMESTAMP(3),
ADD COLUMN     "disabledReason" "WebhookDisabledReason";


-- Endpoints disabled before this: by hand (nothing else disabled one); when is not known.
UPDATE "WebhookEndpoint" SET "disabledReason" = 'MANUAL' WHERE NOT enabled;
