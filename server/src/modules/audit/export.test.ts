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

describe('audit export, filtered as the audit page is', () => {
  let f: { id: string; token: string };
  let licenseA: string;
  let licenseB: string;
  const LIST = `query($type: String, $types: [String!], $licenseId: ID) {
    auditEvents(type: $type, types: $types, licenseId: $licenseId, first: 100) { edges { node { id type licenseId } } }
  }`;
  const exported = async (query: string) => {
    const res = await get(`format=jsonl&${query}`, f.token);
    expect(res.status, query).toBe(200);
    const text = (await res.text()).trim();
    return text ? text.split('\n').map((l) => JSON.parse(l) as { id: string; type: string; licenseId: string | null }) : [];
  };
  /** The ids the auditEvents query lists for the same filter (newest first there, oldest first in the export). */
  const listed = async (variables: Record<string, unknown>) =>
    ok(await s.gql(LIST, variables, { token: f.token })).auditEvents.edges.map((e: { node: { id: string } }) => e.node.id).sort();

  beforeAll(async () => {
    f = await s.tenant();
    licenseA = '0b0e7c1e-0000-4000-8000-00000000000a';
    licenseB = '0b0e7c1e-0000-4000-8000-00000000000b';
    // Types of the license domain, names that only look like it, and others; half on license A, half on B.
    const types = ['license.created', 'license.renewed', 'license_key.created', 'licensee.updated', 'license', 'device.heartbeat', 'compliance.goodwill_used'];
    await s.db.sql.query(
      `INSERT INTO "AuditEvent" ("tenantId", type, "actorType", "subjectType", "subjectId", "licenseId", "occurredAt")
       SELECT $1::uuid, ($2::text[])[1 + g % 7], 'system', 'License', g::text, CASE WHEN g % 2 = 0 THEN $3::uuid ELSE $4::uuid END,
              TIMESTAMP '2026-03-01 00:00:00' + (g * interval '1 hour')
       FROM generate_series(1, 70) AS g`,
      [f.id, types, licenseA, licenseB],
    );
  });

  it('exports only the type the page shows, as auditEvents(type:) lists it', async () => {
    const rows = await exported('type=license.renewed');
    expect(rows).toHaveLength(10);
    expect(rows.every((r) => r.type === 'license.renewed')).toBe(true);
    expect(rows.map((r) => r.id).sort()).toEqual(await listed({ type: 'license.renewed' }));
  });

  it('exports a whole domain for `<domain>.*`, and only that domain', async () => {
    const rows = await exported(`type=${encodeURIComponent('license.*')}`);
    expect(new Set(rows.map((r) => r.type))).toEqual(new Set(['license.created', 'license.renewed']));
    expect(rows).toHaveLength(20);
    expect(rows.map((r) => r.id).sort()).toEqual(await listed({ type: 'license.*' }));
    // Several types and patterns, any of which, as `types`.
    const some = await exported(`types=${encodeURIComponent('license.*')}&types=compliance.goodwill_used`);
    expect(new Set(some.map((r) => r.type))).toEqual(new Set(['license.created', 'license.renewed', 'compliance.goodwill_used']));
    expect(some.map((r) => r.id).sort()).toEqual(await listed({ types: ['license.*', 'compliance.goodwill_used'] }));
    // A domain with no events: an empty file, not the whole log.
    expect(await exported(`type=${encodeURIComponent('webhook.*')}`)).toEqual([]);
    const csv = await get(`format=csv&type=${encodeURIComponent('webhook.*')}`, f.token);
    expect((await csv.text()).trimEnd().split('\r\n')).toHaveLength(1);
  });

  it("exports one license's events, by global id or raw uuid, with the type and time range too", async () => {
    const global = Buffer.from(`License:${licenseA}`).toString('base64');
    for (const id of [licenseA, global]) {
      const rows = await exported(`licenseId=${encodeURIComponent(id)}`);
      expect(rows).toHaveLength(35);
      expect(rows.every((r) => r.licenseId === licenseA)).toBe(true);
      expect(rows.map((r) => r.id).sort()).toEqual(await listed({ licenseId: id }));
    }
    const both = await exported(`licenseId=${licenseB}&type=${encodeURIComponent('license.*')}`);
    expect(both.length).toBeGreaterThan(0);
    expect(both.every((r) => r.licenseId === licenseB && r.type.startsWith('license.'))).toBe(true);
    expect(both.map((r) => r.id).sort()).toEqual(await listed({ licenseId: licenseB, type: 'license.*' }));
    // g = 1..24 fall on 2026-03-01: of those, the license.* events.
    const day = await exported(`type=${encodeURIComponent('license.*')}&from=2026-03-01T00:00:00Z&to=2026-03-02T00:00:00Z`);
    expect(day.map((r) => r.type).sort()).toEqual(['license.created', 'license.created', 'license.created', 'license.renewed', 'license.renewed', 'license.renewed', 'license.renewed']);
  });

  it('refuses a bad filter with 400 and a message, never an unfiltered file', async () => {
    const cases: [string, RegExp][] = [
      ['type=*', /type: .*pattern/],
      ['type=lic*ense', /type: .*pattern/],
      ['type=license*', /type: .*pattern/],
      ['type=*.created', /type: .*pattern/],
      ['type=license.*.x', /type: .*pattern/],
      ['type=', /type: must not be empty/],
      ['types=license.created&types=', /types\.1: must not be empty/],
      ['types=license.created&types=lic*', /types\.1: .*pattern/],
      [`type=${'x'.repeat(101)}`, /type: must be at most 100 characters/],
      ['type=license.created&types=license.renewed', /either `type` or `types`/],
      ['type=license.created&type=license.renewed', /type: given more than once/],
      ['licenseId=not-a-license', /licenseId: not a License id/],
      ['licenseId=', /licenseId: not a License id/],
      // The page's own parameter names are not the export's: a filter never silently dropped.
      [`license=${licenseA}`, /unknown parameter `license`/],
      ['event=license.created', /unknown parameter `event`/],
    ];
    for (const [q, message] of cases) {
      const res = await get(`format=csv&${q}`, f.token);
      expect(res.status, q).toBe(400);
      const body = (await res.json()) as { error: string };
      expect(body.error, q).toMatch(message);
    }
  });
});
