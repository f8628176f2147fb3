import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ok, startTestServer, type TestServer } from '../../../test/harness.ts';

let s: TestServer;
let t: { id: string; token: string };
let other: { id: string; token: string };
beforeAll(async () => {
  s = await startTestServer();
  t = await s.tenant();
  other = await s.tenant();
  // 2,500 rows over ten days, so the export needs several batches and the range filter matters.
  await s.db.sql.query(
    `INSERT INTO "AuditEvent" ("tenantId", type, "actorType", "subjectType", "subjectId", payload, "occurredAt")
     SELECT $1::uuid, 'bulk.recorded', 'system', 'Thing', 'thing-' || g, jsonb_build_object('n', g, 'note', 'a "quoted", text'),
            TIMESTAMP '2026-01-01 00:00:00' + (g * interval '345 seconds')
     FROM generate_series(1, 2500) AS g`,
    [t.id],
  );
  await s.db.sql.query(
    `INSERT INTO "AuditEvent" ("tenantId", type, "actorType", "subjectType", "subjectId", "occurredAt")
     SELECT $1::uuid, 'other.recorded', 'system', 'Thing', 'x', TIMESTAMP '2026-01-02 00:00:00' FROM generate_series(1, 10)`,
    [other.id],
  );
});
afterAll(() => s.close());

const get = (query: string, token: string | null = t.token) =>
  s.fetch(`/audit/export?${query}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });

describe('audit export', () => {
  it('streams JSON lines of the tenant only, in time order', async () => {
    const res = await get('format=jsonl&from=2026-01-01T00:00:00Z&to=2026-02-01T00:00:00Z');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/application\/x-ndjson/);
    const lines = (await res.text()).trim().split('\n').map((l) => JSON.parse(l));
    expect(lines).toHaveLength(2500);
    expect(lines.every((l) => l.type === 'bulk.recorded')).toBe(true);
    expect(lines.map((l) => l.payload.n)).toEqual(Array.from({ length: 2500 }, (_, i) => i + 1));
    const times = lines.map((l) => Date.parse(l.occurredAt));
    expect([...times].sort((a, b) => a - b)).toEqual(times);
  });

  it('streams CSV for a date range (from inclusive, to exclusive), quoting as needed', async () => {
    // Rows are 345 s apart from 2026-01-01T00:05:45Z: the first day holds n = 1..250.
    const res = await get('format=csv&from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/csv/);
    const lines = (await res.text()).trimEnd().split('\r\n');
    expect(lines[0]).toBe('id,seq,occurredAt,type,actorType,actorId,subjectType,subjectId,licenseId,customerId,requestId,payload,prevHash,hash');
    expect(lines).toHaveLength(1 + 250);
    expect(lines[1]).toContain('"{""n"":1,""note"":""a \\""quoted\\"", text""}"');
  });

  it('requires an ADMIN bearer token', async () => {
    expect((await get('format=csv', null)).status).toBe(401);
    const r = ok(await s.gql(`mutation { createApiToken(input: { name: "s", role: SUPPORT }) { ... on CreateApiTokenPayload { token } } }`, {}, { token: t.token }));
    expect((await get('format=csv', r.createApiToken.token)).status).toBe(403);
  });

  it('rejects a bad format or date', async () => {
    expect((await get('format=xml')).status).toBe(400);
    expect((await get('format=csv&from=yesterday')).status).toBe(400);
    // Dates JavaScript reads but PostgreSQL's timestamp cannot hold: a 400 too, not an internal error.
    for (const q of ['from=-100000-01-01T00:00:00Z', 'to=-005000-01-01T00:00:00Z', 'to=+100000-01-01T00:00:00Z']) {
      const res = await get(`format=jsonl&${q}`);
      expect(res.status, q).toBe(400);
      expect(await res.json()).toEqual({ error: 'from and to must be ISO-8601 dates' });
    }
  });

  it('is served on the listening server too', async () => {
    await new Promise<void>((resolve) => s.app.server.listen(0, '127.0.0.1', resolve));
    const { port } = s.app.server.address() as { port: number };
    const res = await fetch(`http://127.0.0.1:${port}/audit/export?format=jsonl&to=2026-01-01T01:00:00Z`, {
      headers: { authorization: `Bearer ${t.token}` },
    });
    expect(res.status).toBe(200);
    expect((await res.text()).trim().split('\n')).toHaveLength(10);
  });
});
