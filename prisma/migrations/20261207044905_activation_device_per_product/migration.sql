-- Each activation carries its license's product and customer, for the index below.
ALTER TABLE "Activation" ADD COLUMN "productId" UUID, ADD COLUMN "customerId" UUID;
UPDATE "Activation" a SET "productId" = l."productId", "customerId" = l."customerId" FROM "License" l WHERE l.id = a."licenseId";
ALTER TABLE "Activation" ALTER COLUMN "productId" SET NOT NULL;

-- A device live on two licenses of one product and customer (two activations at the same moment could
-- leave one, before this index): the older activations are released, as activating with the newer
-- license does, with their audit event; the licenses' counters follow.
WITH ranked AS (
  SELECT a.id, a."tenantId", a."licenseId", a.fingerprint,
         row_number() OVER w AS rn, first_value(a."licenseId") OVER w AS kept
    FROM "Activation" a
   WHERE a."activeFingerprint" IS NOT NULL
  WINDOW w AS (PARTITION BY a."productId", COALESCE(a."customerId", '00000000-0000-0000-0000-000000000000'::uuid), a."activeFingerprint"
               ORDER BY a."activatedAt" DESC, a.id DESC)
), released AS (
  UPDATE "Activation" a SET status = 'RELEASED', "releasedAt" = now() AT TIME ZONE 'UTC', "activeFingerprint" = NULL
    FROM ranked r
   WHERE r.id = a.id AND r.rn > 1
  RETURNING a.id, a."tenantId", a."licenseId", a.fingerprint, r.kept
), freed AS (
  UPDATE "License" l SET "activationsUsed" = l."activationsUsed" - c.n
    FROM (SELECT "licenseId", count(*)::int AS n FROM released GROUP BY 1) c
   WHERE l.id = c."licenseId"
)
INSERT INTO "AuditEvent" ("tenantId", type, "actorType", "actorId", "subjectType", "subjectId", "licenseId", payload, "requestId")
SELECT "tenantId", 'activation.released', 'system', NULL, 'Activation', id::text, "licenseId",
       jsonb_build_object('reason', 'moved', 'fingerprint', fingerprint, 'toLicenseId', kept), 'migration'
  FROM released;

-- One live activation per device among a customer's licenses of one product (written by hand: Prisma
-- cannot express an expression index). A license without a customer counts as one customer, as the
-- move does (IS NOT DISTINCT FROM). Released and inactive activations have no activeFingerprint and
-- so no say here.
CREATE UNIQUE INDEX "Activation_device_per_product_key"
  ON "Activation" ("productId", COALESCE("customerId", '00000000-0000-0000-0000-000000000000'::uuid), "activeFingerprint");

-- Raised by a batched activation statement that had a row refused by one of the unique indexes (its
-- device went live meanwhile): the rows ranked after it would have taken their slots one too far (a
-- device within the limit counted as goodwill), so the whole statement is abandoned and its calls
-- decided one by one (server/src/modules/activation/batched.ts).
CREATE OR REPLACE FUNCTION tessera_batch_refused() RETURNS int LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'a row of this batched activation was refused by a unique index' USING ERRCODE = 'TS001';
END
$$;
