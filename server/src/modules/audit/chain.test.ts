import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ok, startTestServer, type TestServer } from '../../../test/harness.ts';
import { createHash } from 'node:crypto';
import { canonicalJson, entryHash, sealerOf, UNSEALED } from './chain.ts';

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer();
});
afterAll(() => s.close());

const CREATE_PRODUCT = `mutation($input: CreateProductInput!) { createProduct(input: $input) { __typename ... on Product { id } } }`;
const VERIFY = `{ verifyAuditChain { ok checked headSeq unsealed firstBroken { seq eventId reason message } } }`;

async function products(token: string, n: number, prefix: string) {
  for (let i = 0; i < n; i++) {
    const r = ok(await s.gql(CREATE_PRODUCT, { input: { name: `P ${i}`, code: `${prefix}-${i}` } }, { token }));
    expect(r.createProduct.__typename).toBe('Product');
  }
}

describe('audit entry hash', () => {
  it('is sha256 over the canonical JSON of the versioned entry (so chains sealed before still verify)', () => {
    const rows = [
      { id: 1n, tenantId: 't', type: 'license.created', actorType: 'token', actorId: 'a"b\\c', subjectType: 'License', subjectId: 'l', licenseId: 'l', customerId: null, requestId: 'r', occurredAt: new Date('2026-12-01T10:00:00.123Z'), payload: { z: 1, a: [3, { y: null, b: 'é\u2028' }], m: 'x' } },
      { id: 99999999999n, tenantId: 't', type: 'device.heartbeat', actorType: 'client', actorId: null, subjectType: 'Activation', subjectId: 's', licenseId: null, customerId: 'c', requestId: null, occurredAt: new Date(0), payload: {} },
    ];
    for (const row of rows) {
      const canonical = canonicalJson([
        'tessera-audit-v1', row.tenantId, '7', 'prev', row.id.toString(), row.type, row.actorType, row.actorId, row.subjectType, row.subjectId,
        row.licenseId, row.customerId, row.requestId, row.occurredAt.toISOString(), row.payload,
      ]);
      expect(entryHash(row as never, 7n, 'prev')).toBe(createHash('sha256').update(canonical).digest('hex'));
    }
  });
});

describe('audit hash chain', () => {
  it('chains every event of a tenant and verifies it', async () => {
    const t = await s.tenant();
    await products(t.token, 5, 'a');
    const v = ok(await s.gql(VERIFY, {}, { token: t.token })).verifyAuditChain;
    // tenant.created + api_token.created + 5 product.created
    expect(v).toMatchObject({ ok: true, checked: 7, headSeq: 7, unsealed: 0, firstBroken: null });
    const rows = await s.db.prisma.auditEvent.findMany({ where: { tenantId: t.id }, orderBy: { seq: 'asc' } });
    expect(rows.map((r) => Number(r.seq))).toEqual([1, 2, 3, 4, 5, 6, 7]);
    for (let i = 1; i < rows.length; i++) expect(rows[i]!.prevHash).toBe(rows[i - 1]!.hash);
  });

  it('seals in commit (id) order across a change in the number of digits of the id', async () => {
    const t = await s.tenant();
    await sealerOf(s.app.deps).seal(t.id);
    // Ids 995..1004: ordered as text, "1000" would come before "995".
    await s.db.sql.query(`SELECT setval(pg_get_serial_sequence('"AuditEvent"', 'id'), GREATEST(994, (SELECT max(id) FROM "AuditEvent")))`);
    await products(t.token, 10, 'digits');
    await sealerOf(s.app.deps).seal(t.id);
    const rows = await s.db.prisma.auditEvent.findMany({ where: { tenantId: t.id, type: 'product.created' }, orderBy: { seq: 'asc' } });
    expect(rows.map((r) => (r.payload as { code: string }).code)).toEqual(Array.from({ length: 10 }, (_, i) => `digits-${i}`));
    for (let i = 1; i < rows.length; i++) expect(rows[i]!.id > rows[i - 1]!.id).toBe(true);
    expect(ok(await s.gql(VERIFY, {}, { token: t.token })).verifyAuditChain.ok).toBe(true);
  });

  it('detects an edited row', async () => {
    const t = await s.tenant();
    await products(t.token, 4, 'e');
    expect(ok(await s.gql(VERIFY, {}, { token: t.token })).verifyAuditChain.ok).toBe(true);
    await sealerOf(s.app.deps).seal(t.id); // sealing follows commit asynchronously: tamper with sealed rows
    await s.db.sql.query(`UPDATE "AuditEvent" SET payload = '{"code":"forged"}' WHERE "tenantId" = $1 AND seq = 4`, [t.id]);
    const v = ok(await s.gql(VERIFY, {}, { token: t.token })).verifyAuditChain;
    expect(v.ok).toBe(false);
    expect(v.firstBroken).toMatchObject({ seq: 4, reason: 'HASH_MISMATCH' });
    expect(v.checked).toBe(4);
  });

  it('detects a deleted row, in the middle and at the tail', async () => {
    const t = await s.tenant();
    await products(t.token, 4, 'd');
    await sealerOf(s.app.deps).seal(t.id); // sealing follows commit asynchronously: tamper with sealed rows
    await s.db.sql.query(`DELETE FROM "AuditEvent" WHERE "tenantId" = $1 AND seq = 3`, [t.id]);
    let v = ok(await s.gql(VERIFY, {}, { token: t.token })).verifyAuditChain;
    expect(v.firstBroken).toMatchObject({ seq: 3, reason: 'MISSING_ENTRY' });

    const u = await s.tenant();
    await products(u.token, 2, 't');
    expect(ok(await s.gql(VERIFY, {}, { token: u.token })).verifyAuditChain.ok).toBe(true);
    await s.db.sql.query(`DELETE FROM "AuditEvent" WHERE "tenantId" = $1 AND seq = 4`, [u.id]);
    v = ok(await s.gql(VERIFY, {}, { token: u.token })).verifyAuditChain;
    expect(v.firstBroken).toMatchObject({ seq: 4, reason: 'TRUNCATED' });
  });

  it('another tenant\'s tampering does not break this chain', async () => {
    const a = await s.tenant();
    const b = await s.tenant();
    await products(a.token, 2, 'x');
    await products(b.token, 2, 'x');
    await sealerOf(s.app.deps).seal(b.id); // sealing follows commit asynchronously: tamper with sealed rows
    await s.db.sql.query(`UPDATE "AuditEvent" SET type = 'x' WHERE "tenantId" = $1 AND seq = 1`, [b.id]);
    expect(ok(await s.gql(VERIFY, {}, { token: a.token })).verifyAuditChain.ok).toBe(true);
    expect(ok(await s.gql(VERIFY, {}, { token: b.token })).verifyAuditChain.ok).toBe(false);
  });

  it('stays a single gap-free chain under concurrent writers and concurrent sealers', async () => {
    const t = await s.tenant();
    const sealer = sealerOf(s.app.deps);
    await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        s.gql(CREATE_PRODUCT, { input: { name: `C ${i}`, code: `c-${i}` } }, { token: t.token }).then(async (r) => {
          expect(ok(r).createProduct.__typename).toBe('Product');
          if (i % 3 === 0) await sealer.sweep();
        }),
      ),
    );
    const v = ok(await s.gql(VERIFY, {}, { token: t.token })).verifyAuditChain;
    expect(v).toMatchObject({ ok: true, checked: 42, headSeq: 42, unsealed: 0 });
    const seqs = (await s.db.prisma.auditEvent.findMany({ where: { tenantId: t.id }, select: { seq: true } })).map((r) => Number(r.seq)).sort((x, y) => x - y);
    expect(seqs).toEqual(Array.from({ length: 42 }, (_, i) => i + 1));
  });

  it('two instances sealing one tenant at once still build one chain', async () => {
    const t = await s.tenant();
    // A second AppDeps has its own sealer: a second instance on the same database.
    const other = sealerOf({ ...s.app.deps });
    const mine = sealerOf(s.app.deps);
    await Promise.all(
      Array.from({ length: 30 }, async (_, i) => {
        const r = await s.gql(CREATE_PRODUCT, { input: { name: `T ${i}`, code: `t-${i}` } }, { token: t.token });
        expect(ok(r).createProduct.__typename).toBe('Product');
        await Promise.all([other.seal(t.id), mine.seal(t.id), i % 5 === 0 ? other.sweep() : null]);
      }),
    );
    await other.stop();
    const v = ok(await s.gql(VERIFY, {}, { token: t.token })).verifyAuditChain;
    expect(v).toMatchObject({ ok: true, checked: 32, headSeq: 32, unsealed: 0 });
  });

  it('finds the rows still to chain through the partial index, however long the log', async () => {
    const t = await s.tenant();
    await s.db.sql.query(
      `INSERT INTO "AuditEvent" ("tenantId", type, "actorType", "subjectType", "subjectId") SELECT $1::uuid, 'bulk.loaded', 'system', 'Test', g::text FROM generate_series(1, 5000) g`,
      [t.id],
    );
    await sealerOf(s.app.deps).seal(t.id);
    await s.db.sql.exec('ANALYZE "AuditEvent"');
    const plan = await s.db.session(async (sql) => {
      await sql.exec(`SET plan_cache_mode = force_generic_plan; PREPARE unsealed_plan AS ${UNSEALED}`);
      try {
        return (await sql.query<{ 'QUERY PLAN': string }>(`EXPLAIN EXECUTE unsealed_plan('${t.id}')`)).map((r) => r['QUERY PLAN']).join('\n');
      } finally {
        await sql.exec('DEALLOCATE unsealed_plan; RESET plan_cache_mode');
      }
    });
    // The plan kept for the sealer's prepared statement (made without the tenant's id).
    expect(plan).toContain('AuditEvent_unsealed_idx');
  });

  it('requires ADMIN', async () => {
    const t = await s.tenant();
    const r = ok(await s.gql(`mutation { createApiToken(input: { name: "ro", role: SUPPORT }) { __typename ... on CreateApiTokenPayload { token } } }`, {}, { token: t.token }));
    const secret = r.createApiToken.token as string;
    const denied = await s.gql(VERIFY, {}, { token: secret });
    expect(denied.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
  });
});
