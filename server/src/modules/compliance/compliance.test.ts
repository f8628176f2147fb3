import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../app.ts';
import { loadConfig } from '../../config.ts';
import { ok, startTestServer, testEnv, type TestServer } from '../../../test/harness.ts';
import { sealerOf } from '../audit/chain.ts';
import { complianceIdle } from './service.ts';

let s: TestServer;
let t: { id: string; token: string };
let editionId: string;
beforeAll(async () => {
  s = await startTestServer();
  t = await s.tenant();
  const productId = ok(await s.gql(`mutation { createProduct(input: { name: "CAD", code: "cad" }) { ... on Product { id } } }`, {}, { token: t.token })).createProduct.id;
  editionId = ok(await s.gql(`mutation($input: CreateEditionInput!) { createEdition(input: $input) { __typename ... on Edition { id } } }`, {
    input: { productId, name: 'Pro', code: 'pro', licenseType: 'PERPETUAL', maxActivations: 5 },
  }, { token: t.token })).createEdition.id;
});
afterAll(() => s.close());

async function license(extra: Record<string, unknown> = {}) {
  const r = ok(await s.gql(`mutation($input: CreateLicenseInput!) { createLicense(input: $input) { __typename ... on CreateLicensePayload { license { id key } } } }`, {
    input: { editionId, ...extra },
  }, { token: t.token }));
  expect(r.createLicense.__typename).toBe('CreateLicensePayload');
  return r.createLicense.license as { id: string; key: string };
}

async function activate(key: string, fingerprint: string) {
  const r = ok(await s.gql(`mutation($input: ActivateInput!) { activate(input: $input) { __typename ... on LicensingError { code } } }`, { input: { key, fingerprint } }));
  expect(r.activate.__typename).toBe('ActivateSuccess');
}

async function deactivate(key: string, fingerprint: string) {
  const r = ok(await s.gql(`mutation($input: DeactivateInput!) { deactivate(input: $input) { __typename } }`, { input: { key, fingerprint } }));
  expect(r.deactivate.__typename).toBe('DeactivateSuccess');
}

/** Sealing triggers the evaluation, whose events are sealed in turn: wait until both are quiet. */
async function settled() {
  for (let i = 0; i < 100; i++) {
    await sealerOf(s.app.deps).seal(t.id);
    await complianceIdle(s.app.deps);
    await sealerOf(s.app.deps).seal(t.id);
    const pending = await s.db.prisma.auditEvent.count({ where: { tenantId: t.id, seq: null } });
    if (!pending) return;
  }
}

async function complianceEvents(licenseId: string) {
  await settled();
  const raw = Buffer.from(licenseId, 'base64').toString().split(':')[1]!;
  const rows = await s.db.prisma.auditEvent.findMany({ where: { tenantId: t.id, licenseId: raw, type: { in: ['compliance.threshold_crossed', 'compliance.threshold_cleared'] } }, orderBy: { id: 'asc' } });
  return rows.map((r) => `${r.type.replace('compliance.threshold_', '')}:${(r.payload as { percent: number }).percent}`);
}

const SUMMARY = `query($licenseId: ID, $customerId: ID) {
  complianceSummary(licenseId: $licenseId, customerId: $customerId) {
    status ok warning violation
    licenses { licenseId status reasons activationsUsed maxActivations activationThresholds crossed { metric percent } license { key } }
  }
}`;

describe('compliance thresholds', () => {
  it('raises an event once per crossing of 80% and 100%, and again after falling back below', async () => {
    const lic = await license();
    for (const fp of ['d1', 'd2', 'd3']) await activate(lic.key, fp);
    expect(await complianceEvents(lic.id)).toEqual([]);
    await activate(lic.key, 'd4'); // 4/5 = 80%
    expect(await complianceEvents(lic.id)).toEqual(['crossed:80']);
    await activate(lic.key, 'd4'); // the same device again: no new crossing
    await activate(lic.key, 'd5'); // 100%
    expect(await complianceEvents(lic.id)).toEqual(['crossed:80', 'crossed:100']);
    await deactivate(lic.key, 'd5');
    await deactivate(lic.key, 'd4'); // 60%
    expect(await complianceEvents(lic.id)).toEqual(['crossed:80', 'crossed:100', 'cleared:100', 'cleared:80']);
    await activate(lic.key, 'd6'); // 80% again: a new crossing
    expect(await complianceEvents(lic.id)).toEqual(['crossed:80', 'crossed:100', 'cleared:100', 'cleared:80', 'crossed:80']);
  });

  it("re-evaluates the licenses that follow the tenant's default when it changes", async () => {
    const own = await s.tenant();
    const g = async (q: string, vars: Record<string, unknown> = {}) => ok(await s.gql(q, vars, { token: own.token }));
    const productId = (await g(`mutation { createProduct(input: { name: "Lab", code: "lab" }) { ... on Product { id } } }`)).createProduct.id;
    const edition = (await g(`mutation($input: CreateEditionInput!) { createEdition(input: $input) { ... on Edition { id } } }`, {
      input: { productId, name: 'Ten', code: 'ten', licenseType: 'PERPETUAL', maxActivations: 10 },
    })).createEdition.id;
    const create = async () =>
      (await g(`mutation($input: CreateLicenseInput!) { createLicense(input: $input) { ... on CreateLicensePayload { license { id key } } } }`, { input: { editionId: edition } }))
        .createLicense.license as { id: string; key: string };
    const [follows, pinned] = [await create(), await create()];
    await g(`mutation($input: SetComplianceThresholdsInput!) { setComplianceThresholds(input: $input) { __typename } }`, {
      input: { licenseId: pinned.id, metric: 'ACTIVATIONS', percents: [90] },
    });
    for (const fp of ['t1', 't2', 't3', 't4', 't5', 't6']) {
      await activate(follows.key, `f-${fp}`); // 60%: under the default 80
      await activate(pinned.key, `p-${fp}`);
    }
    const events = async () => {
      for (let i = 0; i < 100; i++) {
        await sealerOf(s.app.deps).seal(own.id);
        await complianceIdle(s.app.deps);
        await sealerOf(s.app.deps).seal(own.id);
        if (!(await s.db.prisma.auditEvent.count({ where: { tenantId: own.id, seq: null } }))) break;
      }
      const rows = await s.db.prisma.auditEvent.findMany({ where: { tenantId: own.id, type: { startsWith: 'compliance.threshold_c' } }, orderBy: { id: 'asc' } });
      return rows.map((r) => `${Buffer.from(follows.id, 'base64').toString().endsWith(r.licenseId!) ? 'follows' : 'pinned'} ${r.type.slice(21)}:${(r.payload as { percent: number }).percent}`);
    };
    expect(await events()).toEqual([]);
    await g(`mutation($input: SetComplianceThresholdsInput!) { setComplianceThresholds(input: $input) { __typename } }`, { input: { metric: 'ACTIVATIONS', percents: [50] } });
    expect(await events()).toEqual(['follows crossed:50']);
    await g(`mutation($input: SetComplianceThresholdsInput!) { setComplianceThresholds(input: $input) { __typename } }`, { input: { metric: 'ACTIVATIONS', percents: [70] } });
    expect(await events()).toEqual(['follows crossed:50', 'follows cleared:50']);
  });

  it('concurrent activations cross each threshold exactly once', async () => {
    const lic = await license({ maxActivations: 10 });
    await Promise.all(Array.from({ length: 10 }, (_, i) => activate(lic.key, `c${i}`)));
    expect((await complianceEvents(lic.id)).sort()).toEqual(['crossed:100', 'crossed:80']);
  });

  it('uses per-license thresholds over the tenant default', async () => {
    const lic = await license();
    const set = ok(await s.gql(`mutation($input: SetComplianceThresholdsInput!) { setComplianceThresholds(input: $input) { __typename ... on ComplianceThresholds { percents } } }`, {
      input: { licenseId: lic.id, metric: 'ACTIVATIONS', percents: [40, 20] },
    }, { token: t.token }));
    expect(set.setComplianceThresholds).toEqual({ __typename: 'ComplianceThresholds', percents: [20, 40] });
    await activate(lic.key, 'x1'); // 20%
    await activate(lic.key, 'x2'); // 40%
    expect(await complianceEvents(lic.id)).toEqual(['crossed:20', 'crossed:40']);
    const bad = ok(await s.gql(`mutation($input: SetComplianceThresholdsInput!) { setComplianceThresholds(input: $input) { __typename } }`, {
      input: { metric: 'SEATS', percents: [0] },
    }, { token: t.token }));
    expect(bad.setComplianceThresholds.__typename).toBe('ValidationError');
  });

  it('summarises a license and a customer with OK / WARNING / VIOLATION', async () => {
    const customerId = ok(await s.gql(`mutation { createCustomer(input: { name: "Initech" }) { ... on Customer { id } } }`, {}, { token: t.token })).createCustomer.id;
    const calm = await license({ customerId });
    const busy = await license({ customerId, goodwillActivations: 1 });
    await activate(calm.key, 'k1');
    for (const fp of ['b1', 'b2', 'b3', 'b4']) await activate(busy.key, fp);
    await settled();
    let sum = ok(await s.gql(SUMMARY, { customerId }, { token: t.token })).complianceSummary;
    expect(sum).toMatchObject({ status: 'WARNING', ok: 1, warning: 1, violation: 0 });
    const byId = (id: string) => sum.licenses.find((l: { licenseId: string }) => l.licenseId === id);
    expect(byId(calm.id)).toMatchObject({ status: 'OK', activationsUsed: 1, license: { key: calm.key } });
    expect(byId(busy.id)).toMatchObject({ status: 'WARNING', crossed: [{ metric: 'ACTIVATIONS', percent: 80 }] });
    // Into the goodwill zone: over the cap.
    await activate(busy.key, 'b5');
    await activate(busy.key, 'b6');
    await settled();
    sum = ok(await s.gql(SUMMARY, { licenseId: busy.id }, { token: t.token })).complianceSummary;
    expect(sum).toMatchObject({ status: 'VIOLATION', violation: 1 });
    expect(sum.licenses[0].reasons[0]).toMatch(/ACTIVATIONS 6 over the cap of 5/);
  });

  it('counts every license of a large tenant, and lists its warnings however new they are', async () => {
    // 1,001 older licenses (imported), then one at its cap: the summary used to read only the
    // 1,000 oldest, so the dashboard showed OK while a license stood at its limit.
    const big = await s.tenant();
    const g = async (q: string, vars: Record<string, unknown> = {}) => ok(await s.gql(q, vars, { token: big.token }));
    const productId = (await g(`mutation { createProduct(input: { name: "Fleet", code: "fleet" }) { ... on Product { id } } }`)).createProduct.id;
    const edition = (await g(`mutation($input: CreateEditionInput!) { createEdition(input: $input) { ... on Edition { id } } }`, {
      input: { productId, name: 'Seat', code: 'seat', licenseType: 'PERPETUAL', maxActivations: 1 },
    })).createEdition.id;
    for (const n of [250, 250, 250, 251]) {
      const csv = ['product,edition', ...Array.from({ length: n }, () => 'fleet,seat')].join('\n');
      const imported = await g(`mutation($input: ImportLicensesInput!) { importLicenses(input: $input) { __typename ... on ImportLicensesPayload { count } } }`, {
        input: { format: 'CSV', data: csv },
      });
      expect(imported.importLicenses).toMatchObject({ __typename: 'ImportLicensesPayload', count: n });
    }
    const newest = (await g(`mutation($input: CreateLicenseInput!) { createLicense(input: $input) { ... on CreateLicensePayload { license { id key } } } }`, {
      input: { editionId: edition },
    })).createLicense.license as { id: string; key: string };
    await activate(newest.key, 'fleet-1');
    const sum = (await g(`{ complianceSummary { status ok warning violation licenses { licenseId status } } }`)).complianceSummary;
    expect(sum).toMatchObject({ status: 'WARNING', ok: 1001, warning: 1, violation: 0 });
    expect(sum.licenses).toHaveLength(1000);
    expect(sum.licenses[0]).toEqual({ licenseId: newest.id, status: 'WARNING' });
  });

  it('is tenant-scoped', async () => {
    const lic = await license();
    const other = await s.tenant();
    const sum = ok(await s.gql(SUMMARY, { licenseId: lic.id }, { token: other.token })).complianceSummary;
    expect(sum).toMatchObject({ status: 'OK', licenses: [] });
  });
});

describe('complianceAlerts subscription', () => {
  it('delivers compliance events only, live over graphql-ws', async () => {
    const { listen, subscribe, wsClient } = await import('../../../test/ws.ts');
    const lic = await license({ maxActivations: 2 });
    await settled();
    const after = (await s.db.prisma.auditEvent.findFirstOrThrow({ where: { tenantId: t.id, seq: { not: null } }, orderBy: { seq: 'desc' } })).id.toString();
    const conn = wsClient(await listen(s.app), t.token);
    try {
      const sub = subscribe<{ type: string; payload: { percent: number } }>(
        conn.client,
        `subscription($after: ID, $licenseId: ID) { complianceAlerts(after: $after, licenseId: $licenseId) { type payload } }`,
        { after, licenseId: lic.id },
        (d) => d.complianceAlerts,
      );
      await activate(lic.key, 'a1'); // 50%
      await activate(lic.key, 'a2'); // 100%: crosses 80 and 100
      const items = await sub.until((xs) => xs.length >= 2);
      expect(items.map((x) => `${x.type}:${x.payload.percent}`)).toEqual(['compliance.threshold_crossed:80', 'compliance.threshold_crossed:100']);
    } finally {
      await conn.dispose();
    }
  });
});

describe('shutdown', () => {
  it('finishes the evaluations its last seals start before the app stops using the database', async () => {
    // An app of its own on the shared database, stopped right after an activation that crosses 80%:
    // the seal in flight at stop starts an evaluation, which must be done (its event written) when
    // stop() returns, not still running against a database about to close.
    const own = await buildApp({ config: { ...loadConfig(testEnv), seedDemo: false }, db: s.db });
    const gql = async (query: string, variables: Record<string, unknown>, token?: string) => {
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (token) headers.authorization = `Bearer ${token}`;
      const res = await own.yoga.fetch('http://tessera.test/graphql', { method: 'POST', headers, body: JSON.stringify({ query, variables }) });
      return ok({ ...((await res.json()) as { data: any }), response: res });
    };
    const lic = await license({ maxActivations: 5 });
    const raw = Buffer.from(lic.id, 'base64').toString().split(':')[1]!;
    for (const fp of ['s1', 's2', 's3']) await activate(lic.key, fp);
    await settled();
    const r = await gql(`mutation($input: ActivateInput!) { activate(input: $input) { __typename } }`, { input: { key: lic.key, fingerprint: 's4' } });
    expect(r.activate.__typename).toBe('ActivateSuccess');
    await own.stop();
    const crossed = await s.db.prisma.auditEvent.findMany({ where: { tenantId: t.id, licenseId: raw, type: 'compliance.threshold_crossed' } });
    expect(crossed.map((e) => (e.payload as { percent: number }).percent)).toEqual([80]);
  });
});
