import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ok, startTestServer, type TestServer } from '../../../test/harness.ts';
import { activateDevice, issue } from '../activation/fixtures.ts';
import { sealerOf } from './chain.ts';

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
