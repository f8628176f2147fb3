import { decodeGlobalID } from '@pothos/plugin-relay';
import { migrate } from '@tessera/db/database';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ok, startTestServer, type TestServer } from '../../../test/harness.ts';
import { activateDevice, edition, license as issueLicense, product } from './fixtures.ts';

/**
 * The migration that brought the index of one live activation per device among a customer's licenses
 * of a product. Before it, two activations of one device at the same moment could leave it live on
 * both; the migration releases the older one, as a move does. The state before it is made here from a
 * migrated database, by taking the migration back (its columns, its index, its record).
 */
const MIGRATION = '20261207044905_activation_device_per_product';

let s: TestServer;
let token: string;
let tenantId: string;
beforeAll(async () => {
  s = await startTestServer();
  ({ token, id: tenantId } = await s.tenant());
});
afterAll(() => s.close());

describe(MIGRATION, () => {
  it('releases the older of a device\'s two live activations of one product and customer, audited, and fills the new columns', async () => {
    const editionId = await edition(s, token, await product(s, token), { maxActivations: 5 });
    const acme = ok(await s.gql(`mutation { createCustomer(input: { name: "Acme" }) { ... on Customer { id } } }`, {}, { token })).createCustomer.id as string;
    const [older, newer] = [await issueLicense(s, token, editionId, { customerId: acme }), await issueLicense(s, token, editionId, { customerId: acme })];
    const other = await issueLicense(s, token, editionId);
    const twice = await activateDevice(s, { key: older.key, fingerprint: 'twice' });
    await activateDevice(s, { key: newer.key, fingerprint: 'once' });
    // No customer: a license of its own kind, and a device live there stays.
    await activateDevice(s, { key: other.key, fingerprint: 'twice' });

    // The state before the migration, with the device live on both of Acme's licenses.
    await s.db.sql.exec(`
      DROP INDEX "Activation_device_per_product_key";
      ALTER TABLE "Activation" DROP COLUMN "productId", DROP COLUMN "customerId";
      DELETE FROM "_prisma_migrations" WHERE migration_name = '${MIGRATION}';
      INSERT INTO "Activation" (id, "tenantId", "licenseId", fingerprint, "activeFingerprint", components, status, "activatedAt")
      SELECT gen_random_uuid(), "tenantId", '${newer.id}', fingerprint, "activeFingerprint", components, status, "activatedAt" + interval '1 minute'
        FROM "Activation" WHERE id = '${decodeGlobalID(twice.activation.id).id}';
      UPDATE "License" SET "activationsUsed" = 2 WHERE id = '${newer.id}';`);

    expect(await migrate(s.db)).toEqual([MIGRATION]);

    const rows = await s.db.prisma.activation.findMany({ where: { licenseId: { in: [older.id, newer.id, other.id] } } });
    const on = (licenseId: string, status: string) => rows.filter((r) => r.licenseId === licenseId && r.status === status).map((r) => r.fingerprint).sort();
    expect(on(older.id, 'RELEASED')).toEqual(['twice']);
    expect(on(older.id, 'ACTIVE')).toEqual([]);
    expect(on(newer.id, 'ACTIVE')).toEqual(['once', 'twice']);
    expect(on(other.id, 'ACTIVE')).toEqual(['twice']);
    expect(rows.every((r) => r.productId && r.customerId === (r.licenseId === other.id ? null : decodeGlobalID(acme).id))).toBe(true);
    const counts = await s.db.prisma.license.findMany({ where: { id: { in: [older.id, newer.id] } }, select: { id: true, activationsUsed: true } });
    expect(Object.fromEntries(counts.map((c) => [c.id, c.activationsUsed]))).toEqual({ [older.id]: 0, [newer.id]: 2 });
    const audit = await s.db.prisma.auditEvent.findMany({ where: { tenantId, licenseId: older.id, type: 'activation.released' } });
    expect(audit).toMatchObject([{ actorType: 'system', requestId: 'migration', payload: { reason: 'moved', fingerprint: 'twice', toLicenseId: newer.id } }]);

    // The index holds from now on.
    await expect(
      s.db.sql.query(`UPDATE "Activation" SET status = 'ACTIVE', "activeFingerprint" = fingerprint WHERE "licenseId" = $1::uuid`, [older.id]),
    ).rejects.toThrow(/Activation_device_per_product_key/);
  });
});
