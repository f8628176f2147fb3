import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ok, startTestServer, statementRecorder, testDatabaseUrl, type TestServer } from '../../../test/harness.ts';
import { activateDevice, issue } from '../activation/fixtures.ts';
import { sealerOf } from './chain.ts';
import { pageOfTypesSql, typesOfDomainsSql } from './history.ts';

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer();
});
afterAll(() => s.close());

const HISTORY = `query($licenseId: ID) { auditEvents(licenseId: $licenseId, first: 15) { edges { node { type licenseId } } } }`;

describe("a license's history", () => {
  it('is read through the license index, however long the rest of the log', async () => {
    const { id: tenantId, token } = await s.tenant();
    const quiet = await issue(s, token, { maxActivations: 5 });
    expect(await activateDevice(s, { key: quiet.key, fingerprint: 'q-1' })).toMatchObject({ __typename: 'ActivateSuccess' });
    const busy = await issue(s, token, { maxActivations: 5 });
    // The busy license's heartbeats since: 20,000 newer rows of the same tenant.
    await s.db.sql.query(
      `INSERT INTO "AuditEvent" ("tenantId", type, "actorType", "subjectType", "subjectId", "licenseId")
       SELECT $1::uuid, 'device.heartbeat', 'client', 'Activation', g::text, $2::uuid FROM generate_series(1, 20000) g`,
      [tenantId, busy.id],
    );
    await sealerOf(s.app.deps).seal(tenantId);
    await s.db.sql.exec('ANALYZE "AuditEvent"');

    // By global id or raw uuid; anything else is bad input, not a database error.
    for (const licenseId of [quiet.globalId, quiet.id]) {
      const r = ok(await s.gql(HISTORY, { licenseId }, { token }));
      expect(r.auditEvents.edges.map((e: { node: { type: string } }) => e.node.type)).toEqual(['activation.created', 'license.created']);
    }
    const bad = await s.gql(HISTORY, { licenseId: 'not-a-license' }, { token });
    expect(bad.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');

    // The plan of the list's query (as the ORM sends it: tenant, license, newest first, a page).
    const plan = (
      await s.db.sql.query<{ 'QUERY PLAN': string }>(
        `EXPLAIN SELECT id, type FROM "AuditEvent" WHERE "tenantId" = '${tenantId}'::uuid AND "licenseId" = '${quiet.id}'::uuid ORDER BY id DESC LIMIT 16`,
      )
    )
      .map((row) => row['QUERY PLAN'])
      .join('\n');
    expect(plan).toContain('AuditEvent_licenseId_id_idx');
  });
});

const T1 = 'compliance.threshold_crossed';
const T2 = 'compliance.goodwill_used';
const T3 = 'compliance.activation_denied';
const PAGE = `query($types: [String!], $type: String, $licenseId: ID, $first: Int, $after: String, $last: Int, $before: String) {
  auditEvents(types: $types, type: $type, licenseId: $licenseId, first: $first, after: $after, last: $last, before: $before) {
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { id type } }
  }
}`;
interface Page {
  pageInfo: { hasNextPage: boolean; hasPreviousPage: boolean; startCursor: string | null; endCursor: string | null };
  edges: { cursor: string; node: { id: string; type: string } }[];
}

describe('events of several types (auditEvents(types:))', () => {
  let a: { id: string; token: string };
  let b: { id: string; token: string };
  /** Tenant a's events of T1, T2 and T3, newest first, as the database holds them. */
  let expected: string[];
  /** Every event of tenant b. */
  let ofB: Set<string>;

  const page = async (variables: Record<string, unknown>, token = a.token): Promise<Page> => ok(await s.gql(PAGE, variables, { token })).auditEvents;
  const ids = (p: Page) => p.edges.map((e) => e.node.id);

  beforeAll(async () => {
    a = await s.tenant();
    b = await s.tenant();
    // Interleaved: the two tenants' rows alternate, and the asked-for types lie among others.
    await s.db.sql.query(
      `INSERT INTO "AuditEvent" ("tenantId", type, "actorType", "subjectType", "subjectId")
       SELECT CASE WHEN g % 3 = 0 THEN $2::uuid ELSE $1::uuid END,
              (ARRAY[$3, 'device.heartbeat', $4, 'license.updated', $5, 'device.heartbeat', 'compliance.license_expired'])[1 + g % 7],
              'system', 'License', g::text
         FROM generate_series(1, 240) g`,
      [a.id, b.id, T1, T2, T3],
    );
    const rows = await s.db.sql.query<{ id: string }>(
      `SELECT id::text AS id FROM "AuditEvent" WHERE "tenantId" = $1::uuid AND type = ANY($2::text[]) ORDER BY id DESC`,
      [a.id, [T1, T2, T3]],
    );
    expected = rows.map((r) => r.id);
    expect(expected.length).toBeGreaterThan(60);
    ofB = new Set((await s.db.sql.query<{ id: string }>(`SELECT id::text AS id FROM "AuditEvent" WHERE "tenantId" = $1::uuid`, [b.id])).map((r) => r.id));
  });

  it('lists the events of any of the types, newest first, and only those', async () => {
    const p = await page({ types: [T1, T2, T3], first: 100 });
    expect(ids(p)).toEqual(expected);
    expect(new Set(p.edges.map((e) => e.node.type))).toEqual(new Set([T1, T2, T3]));
    expect(p.pageInfo).toMatchObject({ hasNextPage: false, hasPreviousPage: false });
    // A type listed twice counts once; a type without events adds nothing; one type is `type`.
    expect(ids(await page({ types: [T3, T1, T2, T1, 'compliance.never_written'], first: 100 }))).toEqual(expected);
    const onlyT2 = await page({ types: [T2], first: 100 });
    expect(ids(onlyT2)).toEqual(ids(await page({ type: T2, first: 100 })));
    expect(onlyT2.edges.every((e) => e.node.type === T2)).toBe(true);
  });

  it('pages forwards and backwards over the filtered events alone', async () => {
    // Forwards, 7 at a time, from the newest.
    const forward: string[] = [];
    let after: string | null = null;
    for (;;) {
      const p: Page = await page({ types: [T1, T2, T3], first: 7, after });
      forward.push(...ids(p));
      expect(p.pageInfo.hasPreviousPage).toBe(after !== null);
      if (!p.pageInfo.hasNextPage) break;
      expect(p.edges).toHaveLength(7);
      after = p.pageInfo.endCursor;
    }
    expect(forward).toEqual(expected);

    // Backwards, 6 at a time, from the oldest.
    const backward: string[] = [];
    let before: string | null = null;
    for (;;) {
      const p: Page = await page({ types: [T1, T2, T3], last: 6, before });
      backward.unshift(...ids(p));
      expect(p.pageInfo.hasNextPage).toBe(before !== null);
      if (!p.pageInfo.hasPreviousPage) break;
      expect(p.edges).toHaveLength(6);
      before = p.pageInfo.startCursor;
    }
    expect(backward).toEqual(expected);

    // A page in the middle, either way, from a cursor of the list.
    const all = await page({ types: [T1, T2, T3], first: 100 });
    const tenth = all.edges[9]!.cursor;
    expect(ids(await page({ types: [T1, T2, T3], first: 4, after: tenth }))).toEqual(expected.slice(10, 14));
    expect(ids(await page({ types: [T1, T2, T3], last: 4, before: tenth }))).toEqual(expected.slice(5, 9));
    expect(ids(await page({ types: [T1, T2, T3], first: 0 }))).toEqual([]);
  });

  it("never shows another tenant's events, whatever the cursor", async () => {
    const mine = await page({ types: [T1, T2, T3], first: 100 }, b.token);
    expect(mine.edges.length).toBeGreaterThan(20);
    expect(ids(mine).every((id) => ofB.has(id))).toBe(true);
    expect(ids(mine).some((id) => expected.includes(id))).toBe(false);
    // With a cursor of tenant a's list: still only b's own events.
    const cursor = (await page({ types: [T1, T2, T3], first: 40 })).pageInfo.endCursor;
    for (const args of [{ first: 50, after: cursor }, { last: 50, before: cursor }]) {
      const p = await page({ types: [T1, T2, T3], ...args }, b.token);
      expect(p.edges.length).toBeGreaterThan(0);
      expect(ids(p).every((id) => ofB.has(id))).toBe(true);
    }
  });

  it("narrows a license's history to the types too", async () => {
    const issued = await issue(s, a.token, { maxActivations: 5 });
    expect(await activateDevice(s, { key: issued.key, fingerprint: 'types-1' })).toMatchObject({ __typename: 'ActivateSuccess' });
    const p = await page({ types: ['activation.created', 'license.created', T1], licenseId: issued.globalId, first: 10 });
    expect(p.edges.map((e) => e.node.type)).toEqual(['activation.created', 'license.created']);
    const one = await page({ types: ['license.created', 'device.heartbeat'], licenseId: issued.id, first: 10 });
    expect(one.edges.map((e) => e.node.type)).toEqual(['license.created']);
  });

  it('merges the types in the order of the ids, not of their text, where the ids gain a digit', async () => {
    const c = await s.tenant();
    // Ids on either side of 10^15, alternating types: as text, "999999999999999" sorts above "1000000000000000".
    await s.db.sql.query(
      `INSERT INTO "AuditEvent" (id, "tenantId", type, "actorType", "subjectType", "subjectId")
       SELECT 1000000000000000 + g, $1::uuid, CASE WHEN g % 2 = 0 THEN $2 ELSE $3 END, 'system', 'License', g::text FROM generate_series(-6, 5) g`,
      [c.id, T1, T2],
    );
    const newest = ['1000000000000005', '1000000000000004', '1000000000000003', '1000000000000002', '1000000000000001'];
    const first = ok(await s.gql(PAGE, { types: [T1, T2], first: 5 }, { token: c.token })).auditEvents as Page;
    expect(ids(first)).toEqual(newest);
    const rest = ok(await s.gql(PAGE, { types: [T1, T2], first: 20, after: first.pageInfo.endCursor }, { token: c.token })).auditEvents as Page;
    expect(ids(rest)).toEqual(['1000000000000000', '999999999999999', '999999999999998', '999999999999997', '999999999999996', '999999999999995', '999999999999994']);
    const last = ok(await s.gql(PAGE, { types: [T1, T2], last: 3, before: rest.edges[2]!.cursor }, { token: c.token })).auditEvents as Page;
    expect(ids(last)).toEqual(['1000000000000001', '1000000000000000', '999999999999999']);
  });

  it('refuses bad lists as BAD_USER_INPUT on their field', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ types: [] }, 'types'],
      [{ types: Array.from({ length: 51 }, (_, i) => `compliance.kind_${i}`) }, 'types'],
      [{ types: [T1, 'x'.repeat(101)] }, 'types.1'],
      [{ types: [''] }, 'types.0'],
      [{ types: [T1, 'compliance.\u0000'] }, 'types.1'],
      [{ types: [T1], type: T2 }, 'types'],
    ];
    for (const [variables, path] of cases) {
      const r = await s.gql(PAGE, { first: 5, ...variables }, { token: a.token });
      expect(r.data).toBeNull();
      expect(r.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', fields: [expect.objectContaining({ path })] });
    }
    // 50 types, each of 100 characters, is the most there may be.
    const most = await s.gql(PAGE, { first: 5, types: Array.from({ length: 50 }, (_, i) => `${i}`.padEnd(100, 'x')) }, { token: a.token });
    expect(ok(most).auditEvents.edges).toEqual([]);
  });

  it('reads the newest of each type through the (tenantId, type, id) index, however long the rest of the log', async () => {
    // 20,000 heartbeats newer than every compliance event: walking the log newest first would read them all.
    await s.db.sql.query(
      `INSERT INTO "AuditEvent" ("tenantId", type, "actorType", "subjectType", "subjectId")
       SELECT $1::uuid, 'device.heartbeat', 'client', 'Activation', g::text FROM generate_series(1, 20000) g`,
      [a.id],
    );
    await s.db.sql.exec('ANALYZE "AuditEvent"');
    expect(ids(await page({ types: [T1, T2, T3], first: 30 }))).toEqual(expected.slice(0, 30));
    const types = ['compliance.settings_updated', T1, T2, T3, 'compliance.license_expired', 'compliance.heartbeat_timeout'];
    for (const [backward, cursor] of [[false, false], [false, true], [true, false], [true, true]] as const) {
      const params = [a.id, 31, ...types, ...(cursor ? [expected[20]] : [])];
      const plan = (await s.db.sql.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${pageOfTypesSql(types.length, backward, cursor)}`, params)).map((r) => r['QUERY PLAN']).join('\n');
      expect(plan).toContain('AuditEvent_tenantId_type_id_idx');
      expect(plan).not.toMatch(/AuditEvent_pkey|AuditEvent_tenantId_id_idx|Seq Scan on "AuditEvent"/);
    }
  });
});

describe('events of a whole domain (`<domain>.*` in auditEvents(type:) and (types:))', () => {
  let d: { id: string; token: string };
  /** Tenant d's events of the license domain, newest first, as the database holds them. */
  let licenseEvents: string[];
  const page = async (variables: Record<string, unknown>): Promise<Page> => ok(await s.gql(PAGE, variables, { token: d.token })).auditEvents;
  const ids = (p: Page) => p.edges.map((e) => e.node.id);

  beforeAll(async () => {
    d = await s.tenant();
    // The license domain among names that only begin like it (another domain, no dot, a wildcard of LIKE).
    await s.db.sql.query(
      `INSERT INTO "AuditEvent" ("tenantId", type, "actorType", "subjectType", "subjectId")
       SELECT $1::uuid,
              (ARRAY['license.created', 'license_key.created', 'license.renewed', 'licensee.updated', 'license', $2, 'licenseXcreated', 'license.revoked'])[1 + g % 8],
              'system', 'License', g::text
         FROM generate_series(1, 160) g`,
      [d.id, T1],
    );
    licenseEvents = (
      await s.db.sql.query<{ id: string }>(`SELECT id::text AS id FROM "AuditEvent" WHERE "tenantId" = $1::uuid AND type LIKE 'license.%' ORDER BY "AuditEvent".id DESC`, [d.id])
    ).map((r) => r.id);
    expect(licenseEvents.length).toBe(60);
  });

  it('lists every event of the domain, newest first, and no other', async () => {
    const p = await page({ type: 'license.*', first: 100 });
    expect(ids(p)).toEqual(licenseEvents);
    expect(new Set(p.edges.map((e) => e.node.type))).toEqual(new Set(['license.created', 'license.renewed', 'license.revoked']));
    expect(ids(await page({ types: ['license.*'], first: 100 }))).toEqual(licenseEvents);
    // Patterns and exact types together, any of which; a domain without events adds nothing.
    const mixed = await page({ types: ['webhook.*', 'license.*', T1], first: 100 });
    expect(new Set(mixed.edges.map((e) => e.node.type))).toEqual(new Set(['license.created', 'license.renewed', 'license.revoked', T1]));
    expect(mixed.edges).toHaveLength(80);
    expect(ids(await page({ type: 'webhook.*', first: 10 }))).toEqual([]);
  });

  it('pages forwards and backwards over the domain', async () => {
    const forward: string[] = [];
    let after: string | null = null;
    for (;;) {
      const p: Page = await page({ type: 'license.*', first: 7, after });
      forward.push(...ids(p));
      if (!p.pageInfo.hasNextPage) break;
      after = p.pageInfo.endCursor;
    }
    expect(forward).toEqual(licenseEvents);
    const backward: string[] = [];
    let before: string | null = null;
    for (;;) {
      const p: Page = await page({ type: 'license.*', last: 9, before });
      backward.unshift(...ids(p));
      if (!p.pageInfo.hasPreviousPage) break;
      before = p.pageInfo.startCursor;
    }
    expect(backward).toEqual(licenseEvents);
  });

  it("narrows a license's history to the domain", async () => {
    const issued = await issue(s, d.token, { maxActivations: 5 });
    expect(await activateDevice(s, { key: issued.key, fingerprint: 'domain-1' })).toMatchObject({ __typename: 'ActivateSuccess' });
    expect((await page({ type: 'license.*', licenseId: issued.globalId, first: 10 })).edges.map((e) => e.node.type)).toEqual(['license.created']);
    expect((await page({ types: ['activation.*', 'license.*'], licenseId: issued.id, first: 10 })).edges.map((e) => e.node.type)).toEqual([
      'activation.created',
      'license.created',
    ]);
  });

  it('refuses a malformed pattern as BAD_USER_INPUT on its field, saying what a pattern is', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ type: '*' }, 'type'],
      [{ type: 'lic*ense' }, 'type'],
      [{ type: 'license*' }, 'type'],
      [{ type: '*.created' }, 'type'],
      [{ type: '.*' }, 'type'],
      [{ type: 'license.*.created' }, 'type'],
      [{ type: 'license.**' }, 'type'],
      [{ types: ['license.*', 'lic*'] }, 'types.1'],
    ];
    for (const [variables, path] of cases) {
      const r = await s.gql(PAGE, { first: 5, ...variables }, { token: d.token });
      expect(r.data, JSON.stringify(variables)).toBeNull();
      expect(r.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', fields: [expect.objectContaining({ path })] });
      expect(r.errors?.[0]?.message).toMatch(/pattern.*e\.g\. "license\.\*"/);
    }
    for (const [variables, path] of [
      [{ type: '' }, 'type'],
      [{ type: 'x'.repeat(101) }, 'type'],
      [{ type: 'license.\u0000' }, 'type'],
    ] as const) {
      const r = await s.gql(PAGE, { first: 5, ...variables }, { token: d.token });
      expect(r.data).toBeNull();
      expect(r.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', fields: [expect.objectContaining({ path })] });
    }
  });

  it("finds the domain's types through the (tenantId, type, id) index, however long the rest of the log", async () => {
    await s.db.sql.query(
      `INSERT INTO "AuditEvent" ("tenantId", type, "actorType", "subjectType", "subjectId")
       SELECT $1::uuid, 'device.heartbeat', 'client', 'Activation', g::text FROM generate_series(1, 20000) g`,
      [d.id],
    );
    await s.db.sql.exec('ANALYZE "AuditEvent"');
    const newest = await s.db.sql.query<{ id: string }>(
      `SELECT id::text AS id FROM "AuditEvent" WHERE "tenantId" = $1::uuid AND type LIKE 'license.%' ORDER BY "AuditEvent".id DESC LIMIT 30`,
      [d.id],
    );
    expect(ids(await page({ type: 'license.*', first: 30 }))).toEqual(newest.map((r) => r.id));
    const plan = (await s.db.sql.query<{ 'QUERY PLAN': string }>(`EXPLAIN (COSTS OFF) ${typesOfDomainsSql(2)}`, [d.id, 'license.', 'compliance.']))
      .map((r) => r['QUERY PLAN'])
      .join('\n');
    // The first type, then each next one, by a descent of the index.
    expect(plan).toMatch(/Index Only Scan using "AuditEvent_tenantId_type_id_idx" on "AuditEvent"\s*\n\s*Index Cond: \("tenantId" = /);
    expect(plan).toMatch(/Index Only Scan using "AuditEvent_tenantId_type_id_idx" on "AuditEvent" e\s*\n\s*Index Cond: \(\("tenantId" = [^\n]* AND \(type > kinds\w*\.type\)\)/);
    expect(plan).not.toMatch(/AuditEvent_pkey|AuditEvent_tenantId_id_idx|Seq Scan on "AuditEvent"|Sort/);
  });
});

/** What a request costs in SQL, counted at the embedded database (dialect-independent: the PGlite pass). */
describe.skipIf(!!testDatabaseUrl)('SQL statements of auditEvents(types:)', () => {
  it('two for a page of several types (their ids, then the rows), none for bad input', async () => {
    const { id: tenantId, token } = await s.tenant();
    await s.db.sql.query(
      `INSERT INTO "AuditEvent" ("tenantId", type, "actorType", "subjectType", "subjectId")
       SELECT $1::uuid, (ARRAY[$2, $3, 'device.heartbeat'])[1 + g % 3], 'system', 'License', g::text FROM generate_series(1, 90) g`,
      [tenantId, T1, T2],
    );
    const recorder = statementRecorder(s);
    const { statements } = recorder;
    try {
      const count = async (variables: Record<string, unknown>) => {
        const r = await recorder.during(() => s.gql(PAGE, variables, { token }));
        return { r, n: statements.filter((q) => q.includes('"AuditEvent"')).length };
      };
      const first = await count({ types: [T1, T2], first: 30 });
      const after = ok(first.r).auditEvents.pageInfo.endCursor;
      const cases = [
        [{ types: [T1, T2], first: 30 }, pageOfTypesSql(2, false, false), 30],
        [{ types: [T1, T2], first: 20, after }, pageOfTypesSql(2, false, true), 20],
        [{ types: [T1, T2], last: 10 }, pageOfTypesSql(2, true, false), 10],
        [{ types: [T1, T2], last: 10, before: after }, pageOfTypesSql(2, true, true), 10],
      ] as const;
      for (const [variables, sql, edges] of cases) {
        const { r, n } = await count(variables);
        expect(ok(r).auditEvents.edges).toHaveLength(edges);
        expect(n).toBe(2);
        expect(statements).toContain(sql);
      }
      for (const types of [[], [T1, 'x'.repeat(101)]]) {
        const { r, n } = await count({ types, first: 30 });
        expect(r.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
        expect(n).toBe(0);
      }
    } finally {
      recorder.restore();
    }
  });
});
