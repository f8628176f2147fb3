import pg from 'pg';
import type { Browser, BrowserContext, Page, Request } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launch, shot, submitSignIn, watchErrors } from './browser';
import { gql, startServer, type RunningServer } from './server';

// The console's live views on pages left open. Where time matters the browser's clock is driven by the
// test (Playwright's clock), so "5 minutes later" is a jump, not a wait.

let server: RunningServer;
let browser: Browser;
let context: BrowserContext;
let page: Page;
let errors: string[];
let license: { id: string; key: string };
const stamp = Date.now().toString(36);
const hostname = `kiosk-${stamp}`;
const fingerprint = `fp-clock-${stamp}`;

beforeAll(async () => {
  // Compliance sweeps every second: the demo's trial (14 days) is reported as expiring soon at once.
  server = await startServer({ TESSERA_COMPLIANCE_SWEEP_SECONDS: '1' });
  browser = await launch();
  const { licenses } = await gql<{ licenses: { edges: { node: { id: string; key: string; provisioning: string; deploymentMode: string; status: string; activationsUsed: number; maxActivations: number | null } }[] } }>(
    server.base,
    server.demo.apiToken,
    `{ licenses(first: 50) { edges { node { id key provisioning deploymentMode status activationsUsed maxActivations } } } }`,
  );
  const found = licenses.edges
    .map((e) => e.node)
    .find((l) => l.provisioning !== 'FLOATING' && l.deploymentMode !== 'OFFLINE' && l.status === 'ACTIVE' && (l.maxActivations === null || l.activationsUsed + 2 <= l.maxActivations));
  if (!found) throw new Error('the demo data has no active license with two free activations');
  license = found;
});

afterAll(async () => {
  await browser?.close();
  await server?.stop();
});

async function client(mutation: 'activate' | 'heartbeat', device = { fingerprint, hostname }) {
  const input = { key: license.key, fingerprint: device.fingerprint, client: { hostname: device.hostname, platform: 'linux' } };
  const r = await gql<Record<string, { __typename: string; code?: string }>>(
    server.base,
    null,
    `mutation($input: ${mutation === 'activate' ? 'ActivateInput' : 'HeartbeatInput'}!) { ${mutation}(input: $input) { __typename ... on LicensingError { code } } }`,
    { input },
  );
  expect(r[mutation]).toEqual({ __typename: mutation === 'activate' ? 'ActivateSuccess' : 'HeartbeatSuccess' });
}

/** A page of `ctx` (`prepare` sees it first), signed in as the demo owner, on the dashboard. */
async function signedIn(ctx: BrowserContext, prepare?: (p: Page) => void): Promise<Page> {
  const p = await ctx.newPage();
  p.setDefaultTimeout(20_000);
  prepare?.(p);
  await p.goto(`${server.base}/signin`);
  await submitSignIn(p, server.demo.tenant, server.demo.email, server.demo.password);
  await p.getByRole('heading', { level: 1, name: 'Dashboard' }).waitFor();
  return p;
}

const lastSeen = () => page.getByRole('row', { name: new RegExp(hostname) }).getByRole('cell').nth(6);

describe('live views on an open page', () => {
  it("a device's Last seen moves on as time passes, and back to now with its heartbeat", async () => {
    context = await browser.newContext({ viewport: { width: 1360, height: 860 }, locale: 'en-US' });
    // Runs with the real time until paused below.
    await context.clock.install();
    // The license page is live once its `licenseLive` subscription has answered over the socket: it is
    // pushed changes from then on, and re-reads the license only on a push (or every 30 s). Its first
    // answer makes it read the license once more: that read must be on the page before time is moved.
    let reread!: Promise<void>;
    page = await signedIn(context, (p) => {
      errors = watchErrors(p);
      reread = new Promise<void>((resolve) => {
        let live = false;
        const reads = new Set<Request>();
        p.on('websocket', (ws) => ws.on('framereceived', (f) => (live ||= String(f.payload).includes('"licenseLive"'))));
        p.on('request', (r) => void (live && r.postData()?.includes('"operationName":"License"') && reads.add(r)));
        p.on('requestfinished', (r) => reads.has(r) && resolve());
      });
    });
    await client('activate');
    await page.goto(`${server.base}/licenses/${encodeURIComponent(license.id)}`);
    await lastSeen().filter({ hasText: /^just now$/ }).waitFor();
    await reread;
    // Two frames: the answer read is rendered.
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));

    // From here the browser's time moves only when the test moves it; no timer fires by itself.
    await page.clock.pauseAt(Date.now() + 1_000);
    await page.clock.fastForward('05:00');
    await lastSeen().filter({ hasText: /^5 minutes ago$/ }).waitFor();
    await shot(page, 'live-views-01-five-minutes-later');

    // Back to the real time, with no timer run: the row shows the old time until something redraws it.
    await page.clock.setSystemTime(Date.now());
    expect(await lastSeen().textContent()).toBe('5 minutes ago');
    // The device checks in: the page, subscribed to the license's events, shows it at once.
    await client('heartbeat');
    await lastSeen().filter({ hasText: /^just now$/ }).waitFor();
    expect(errors).toEqual([]);
    await context.close();
  });

  it('the dashboard keeps counting an activation in its chart after it scrolls out of the live feed', async () => {
    const ctx = await browser.newContext({ viewport: { width: 1360, height: 860 }, locale: 'en-US' });
    let pageErrors: string[] = [];
    const dash = await signedIn(ctx, (p) => (pageErrors = watchErrors(p)));
    await dash.locator('[data-testid="live-status"][data-status="live"]').waitFor();
    const today = dash.getByTestId('activations-today');
    const before = Number((await today.textContent())!.match(/\d+/)![0]);

    await client('activate', { fingerprint: `fp-chart-${stamp}`, hostname: `chart-${stamp}` });
    await today.filter({ hasText: new RegExp(`^${before + 1} today$`) }).waitFor();
    // More events than the feed keeps (40): the activation leaves the feed, not the chart.
    for (let i = 0; i < 45; i++) {
      await gql(server.base, server.demo.apiToken, `mutation($input: CreateCustomerInput!) { createCustomer(input: $input) { __typename } }`, { input: { name: `Filler ${stamp} ${i}` } });
    }
    await dash.locator('.feed li[data-type="customer.created"]', { hasText: `Filler ${stamp} 44` }).waitFor();
    expect(await dash.locator('.feed li[data-type="activation.created"]').count()).toBe(0);
    expect(await today.textContent()).toBe(`${before + 1} today`);
    expect(pageErrors).toEqual([]);
    await ctx.close();
  });

  it("the dashboard's compliance count follows a device that stops checking in, and comes back", async () => {
    const owner = <T = Record<string, any>>(query: string, variables: Record<string, unknown> = {}) => gql<T>(server.base, server.demo.apiToken, query, variables);
    const product = await owner(`mutation($input: CreateProductInput!) { createProduct(input: $input) { ... on Product { id } } }`, { input: { name: 'Kiosks', code: `kiosks-${stamp}` } });
    const edition = await owner(`mutation($input: CreateEditionInput!) { createEdition(input: $input) { __typename ... on Edition { id } } }`, {
      input: { productId: product.createProduct.id, name: 'Hourly', code: `hourly-${stamp}`, licenseType: 'PERPETUAL', heartbeatSeconds: 3600 },
    });
    const issued = await owner(`mutation($input: CreateLicenseInput!) { createLicense(input: $input) { ... on CreateLicensePayload { license { key } } } }`, {
      input: { editionId: edition.createEdition.id },
    });
    const key: string = issued.createLicense.license.key;
    const device = async (mutation: 'activate' | 'heartbeat') => {
      const r = await gql<Record<string, { __typename: string }>>(server.base, null, `mutation($input: ${mutation === 'activate' ? 'ActivateInput' : 'HeartbeatInput'}!) { ${mutation}(input: $input) { __typename } }`, {
        input: { key, fingerprint: `fp-lapse-${stamp}` },
      });
      expect(r[mutation]!.__typename).toBe(mutation === 'activate' ? 'ActivateSuccess' : 'HeartbeatSuccess');
    };
    await device('activate');

    const ctx = await browser.newContext({ viewport: { width: 1360, height: 860 }, locale: 'en-US' });
    let pageErrors: string[] = [];
    const dash = await signedIn(ctx, (p) => (pageErrors = watchErrors(p)));
    await dash.locator('[data-testid="live-status"][data-status="live"]').waitFor();
    const alerts = dash.locator('a.stat', { hasText: 'Compliance alerts' }).locator('strong');
    const before = Number(await alerts.textContent());

    // The device was last heard from three hours ago (hourly heartbeats, one hour of tolerance): the sweep
    // reports it, and the count moves with the alert in the feed.
    const db = new pg.Client({ host: server.dataDir, user: 'postgres', database: 'postgres' });
    await db.connect();
    try {
      const r = await db.query(`UPDATE "Activation" SET "lastHeartbeatAt" = now() - interval '3 hours' WHERE fingerprint = $1`, [`fp-lapse-${stamp}`]);
      expect(r.rowCount).toBe(1);
    } finally {
      await db.end();
    }
    await dash.locator('.feed li[data-type="compliance.heartbeat_timeout"]').first().waitFor({ timeout: 60_000 });
    await alerts.filter({ hasText: new RegExp(`^${before + 1}$`) }).waitFor();

    // It checks in again: the count goes back down without a reload.
    await device('heartbeat');
    await alerts.filter({ hasText: new RegExp(`^${before}$`) }).waitFor();
    await shot(dash, 'live-views-02-device-back');
    expect(pageErrors).toEqual([]);
    await ctx.close();
  });

  it('the compliance page lists every kind of alert of the past, not only those it saw arrive', async () => {
    const raised = async () =>
      (await gql<{ auditEvents: { edges: unknown[] } }>(server.base, server.demo.apiToken, `{ auditEvents(first: 1, type: "compliance.license_expiring") { edges { node { id } } } }`)).auditEvents.edges.length;
    await expect.poll(raised, { timeout: 60_000, interval: 500 }).toBe(1);
    const ctx = await browser.newContext({ viewport: { width: 1360, height: 860 }, locale: 'en-US' });
    let pageErrors: string[] = [];
    const compliance = await signedIn(ctx, (p) => (pageErrors = watchErrors(p)));
    await compliance.goto(`${server.base}/compliance`);
    // Raised before the page was opened: it comes from the history, as the alerts of other kinds do.
    await compliance.locator('.feed li[data-type="compliance.license_expiring"]').first().waitFor();
    expect(pageErrors).toEqual([]);
    await ctx.close();
  });
});
