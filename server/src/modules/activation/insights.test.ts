import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ok, startTestServer, type TestServer } from '../../../test/harness.ts';
import { activateDevice, deactivateDevice, heartbeatDevice, issue, license as issueLicense } from './fixtures.ts';

let s: TestServer;
let token: string;
let tenantId: string;
beforeAll(async () => {
  s = await startTestServer();
  ({ token, id: tenantId } = await s.tenant());
});
afterAll(() => s.close());

const INSIGHTS = `query($productId: ID, $days: Int) {
  deviceInsights(productId: $productId, seenWithinDays: $days) {
    __typename
    ... on DeviceInsights {
      seenWithinDays since devices silentDevices
      appVersions { values { value devices } others }
      platforms { values { value devices } others }
      osVersions { values { value devices } others }
    }
    ... on Error { message }
    ... on ValidationError { fields { path message } }
  }
}`;

const insights = async (variables: Record<string, unknown>, as = token) => ok(await s.gql(INSIGHTS, variables, { token: as })).deviceInsights;
const shares = (b: { values: { value: string | null; devices: number }[] }) => b.values.map((v) => [v.value, v.devices]);

describe('deviceInsights', () => {
  let productA: string;
  let productB: string;

  beforeAll(async () => {
    const a = await issue(s, token, { maxActivations: 100 });
    productA = a.productId;
    const second = await issueLicense(s, token, a.editionId);
    const b = await issue(s, token, { maxActivations: 10 });
    productB = b.productId;
    const device = async (key: string, fingerprint: string, client: Record<string, string> | null) => {
      expect(await activateDevice(s, { key, fingerprint })).toMatchObject({ __typename: 'ActivateSuccess' });
      if (client) expect(await heartbeatDevice(s, { key, fingerprint, client })).toMatchObject({ __typename: 'HeartbeatSuccess' });
    };
    // Product A: two licenses, six live devices; the app version is what the last heartbeat said.
    await device(a.key, 'a1', { appVersion: '1.9.0', platform: 'linux', osVersion: '6.1' });
    await device(a.key, 'a2', { appVersion: '1.9.0', platform: 'windows', osVersion: '11' });
    await device(a.key, 'a3', { appVersion: '1.10.0', platform: 'windows', osVersion: '11' });
    await device(second.key, 'a4', { appVersion: '1.10.0', platform: 'macos', osVersion: '14.5' });
    await device(second.key, 'a5', null); // never reported anything
    await device(a.key, 'a6', { appVersion: '1.8.2', platform: 'linux', osVersion: '6.1' });
    expect(await heartbeatDevice(s, { key: a.key, fingerprint: 'a6', client: { appVersion: '1.10.0' } })).toMatchObject({ __typename: 'HeartbeatSuccess' });
    // A released device is nobody's; a silent one still holds its activation but is not counted as running anything.
    await device(a.key, 'gone', { appVersion: '0.1.0', platform: 'linux', osVersion: '5.0' });
    expect(await deactivateDevice(s, { key: a.key, fingerprint: 'gone' })).toMatchObject({ __typename: 'DeactivateSuccess' });
    await device(a.key, 'silent', { appVersion: '0.2.0', platform: 'linux', osVersion: '5.0' });
    await s.db.sql.query(
      `UPDATE "Activation" SET "lastHeartbeatAt" = now() - interval '40 days', "activatedAt" = now() - interval '60 days' WHERE "tenantId" = $1::uuid AND fingerprint = 'silent'`,
      [tenantId],
    );
    // Product B: one device.
    await device(b.key, 'b1', { appVersion: '3.0.0', platform: 'linux', osVersion: '6.8' });
  });

  it("counts one product's devices by what they last reported, most first", async () => {
    const r = await insights({ productId: productA });
    expect(r).toMatchObject({ __typename: 'DeviceInsights', seenWithinDays: 30, devices: 6, silentDevices: 1 });
    expect(Math.abs(new Date(r.since).getTime() - (Date.now() - 30 * 86_400_000))).toBeLessThan(60_000);
    // Ties: versions newest first (1.10 after 1.9 in version order), names alphabetically.
    expect(shares(r.appVersions)).toEqual([
      ['1.10.0', 3],
      ['1.9.0', 2],
      [null, 1],
    ]);
    expect(shares(r.platforms)).toEqual([
      ['linux', 2],
      ['windows', 2],
      ['macos', 1],
      [null, 1],
    ]);
    expect(shares(r.osVersions)).toEqual([
      ['11', 2],
      ['6.1', 2],
      ['14.5', 1],
      [null, 1],
    ]);
    expect([r.appVersions.others, r.platforms.others, r.osVersions.others]).toEqual([0, 0, 0]);
  });

  it('covers the whole tenant without a product, and a wider window takes the silent device in', async () => {
    const all = await insights({});
    expect(all).toMatchObject({ devices: 7, silentDevices: 1 });
    expect(shares(all.appVersions)).toEqual([
      ['1.10.0', 3],
      ['1.9.0', 2],
      ['3.0.0', 1],
      [null, 1],
    ]);
    const wide = await insights({ productId: productA, days: 45 });
    expect(wide).toMatchObject({ seenWithinDays: 45, devices: 7, silentDevices: 0 });
    expect(shares(wide.appVersions)).toContainEqual(['0.2.0', 1]);
    expect(shares(wide.appVersions)).not.toContainEqual(['0.1.0', 1]);
    expect(await insights({ productId: productB })).toMatchObject({ devices: 1, silentDevices: 0, platforms: { values: [{ value: 'linux', devices: 1 }] } });
  });

  it('lists the 20 most common values and sums the rest', async () => {
    const { token: own } = await s.tenant();
    const l = await issue(s, own, { maxActivations: 100 });
    for (let i = 0; i < 24; i++) {
      const fingerprint = `many-${i}`;
      expect(await activateDevice(s, { key: l.key, fingerprint, client: { appVersion: `2.${i < 4 ? 0 : i}.0` } })).toMatchObject({ __typename: 'ActivateSuccess' });
    }
    const r = await insights({}, own);
    expect(r.devices).toBe(24);
    expect(r.appVersions.values).toHaveLength(20);
    expect(r.appVersions.values[0]).toEqual({ value: '2.0.0', devices: 4 });
    expect(r.appVersions.values.reduce((n: number, v: { devices: number }) => n + v.devices, 0) + r.appVersions.others).toBe(24);
    expect(r.appVersions.others).toBe(1); // 21 versions: 2.0.0 (4 devices) and 20 with one each
  });

  it('refuses a window out of range, a malformed id and another tenant’s product with typed errors', async () => {
    for (const days of [0, -1, 366]) {
      expect(await insights({ days })).toMatchObject({ __typename: 'ValidationError', fields: [{ path: 'seenWithinDays' }] });
    }
    expect(await insights({ productId: 'not-an-id' })).toMatchObject({ __typename: 'ValidationError', fields: [{ path: 'productId' }] });
    const other = await s.tenant();
    const theirs = await issue(s, other.token, {});
    expect(await insights({ productId: theirs.productId })).toMatchObject({ __typename: 'NotFoundError' });
    expect(await insights({ productId: productA }, other.token)).toMatchObject({ __typename: 'NotFoundError' });
    const anonymous = await s.gql(INSIGHTS, {});
    expect(anonymous.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });
});
