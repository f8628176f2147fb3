import pg from 'pg';
import type { Browser, BrowserContext, Page, Request } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launch, shot, submitSignIn, watchErrors } from './browser';
import { gql, startServer, type RunningServer } from './server';

// What the console reads, and how much: the dashboard's activation chart is counted by the server (not
// from the first 1,000 events of the audit log), an open license page is not read again for every
// heartbeat of its devices, and the compliance history has every kind of event the feed has.

let server: RunningServer;
let browser: Browser;
const stamp = Date.now().toString(36);

beforeAll(async () => {
  server = await startServer();
  browser = await launch();
});

afterAll(async () => {
  await browser?.close();
  await server?.stop();
});

const owner = <T = Record<string, any>>(query: string, variables: Record<string, unknown> = {}) => gql<T>(server.base, server.demo.apiToken, query, variables);

async function issueLicense(editionId: string): Promise<{ id: string; key: string }> {
  const r = await owner(`mutation($input: CreateLicenseInput!) { createLicense(input: $input) { __typename ... on CreateLicensePayload { license { id key } } } }`, { input: { editionId } });
  expect(r.createLicense.__typename).toBe('CreateLicensePayload');
  return r.createLicense.license;
}

async function device(mutation: 'activate' | 'heartbeat' | 'deactivate', key: string, fingerprint: string, client?: Record<string, string>) {
  const type = { activate: 'ActivateInput', heartbeat: 'HeartbeatInput', deactivate: 'DeactivateInput' }[mutation];
  const r = await gql<Record<string, { __typename: string; code?: string }>>(
    server.base,
    null,
    `mutation($input: ${type}!) { ${mutation}(input: $input) { __typename ... on LicensingError { code } } }`,
    { input: { key, fingerprint, ...(client ? { client } : {}) } },
  );
  expect(r[mutation]).toEqual({ __typename: { activate: 'ActivateSuccess', heartbeat: 'HeartbeatSuccess', deactivate: 'DeactivateSuccess' }[mutation] });
}

/** A page of `ctx` (`prepare` sees it first), signed in as the demo owner, on the dashboard. */
async function signedIn(ctx: BrowserContext, prepare?: (p: Page) => void): Promise<Page> {
  const p = await ctx.newPage();
  p.setDefaultTimeout(30_000);
  prepare?.(p);
  await p.goto(`${server.base}/signin`);
  await submitSignIn(p, server.demo.tenant, server.demo.email, server.demo.password);
  await p.getByRole('heading', { level: 1, name: 'Dashboard' }).waitFor();
  return p;
}

const utcDay = (daysAgo: number) => new Date(Date.now() - daysAgo * 86_400_000).toISOString().slice(0, 10);

let editionId: string;

describe('console reads', () => {
  it('the dashboard charts every activation of the last days, counted by the server, and adds live ones', async () => {
    const product = await owner(`mutation($input: CreateProductInput!) { createProduct(input: $input) { __typename ... on Product { id } } }`, { input: { name: 'Busy', code: `busy-${stamp}` } });
    const edition = await owner(`mutation($input: CreateEditionInput!) { createEdition(input: $input) { __typename ... on Edition { id } } }`, {
      input: { productId: product.createProduct.id, name: 'Site', code: `site-${stamp}`, licenseType: 'PERPETUAL' },
    });
    expect(edition.createEdition.__typename).toBe('Edition');
    editionId = edition.createEdition.id;
    const busy = await issueLicense(editionId);
    // Today: more activations than the console used to read of the audit log (1,000), through the API.
    const TODAY = 1_010;
    for (let i = 0; i < TODAY; i += 50) {
      await Promise.all(Array.from({ length: Math.min(50, TODAY - i) }, (_, j) => device('activate', busy.key, `busy-${stamp}-${i + j}`)));
    }
    // The five days before, set-based through the server's database socket: 220 a day, at noon UTC.
    const db = new pg.Client({ host: server.dataDir, user: 'postgres', database: 'postgres' });
    await db.connect();
    try {
      const r = await db.query(
        `INSERT INTO "Activation" (id, "tenantId", "licenseId", fingerprint, status, "activatedAt", "releasedAt", "productId", "customerId")
         SELECT gen_random_uuid(), l."tenantId", l.id, 'history-' || g, 'RELEASED',
                date_trunc('day', now() AT TIME ZONE 'UTC') - make_interval(days => 1 + g % 5) + interval '12 hours',
                now() AT TIME ZONE 'UTC', l."productId", l."customerId"
           FROM "License" l, generate_series(0, 1099) g WHERE l.key = $1`,
        [busy.key],
      );
      expect(r.rowCount).toBe(1_100);
    } finally {
      await db.end();
    }

    const ctx = await browser.newContext({ viewport: { width: 1360, height: 860 }, locale: 'en-US', timezoneId: 'UTC' });
    let errors: string[] = [];
    const dash = await signedIn(ctx, (p) => (errors = watchErrors(p)));
    await dash.locator('[data-testid="live-status"][data-status="live"]').waitFor();
    const today = dash.getByTestId('activations-today');
    const bars = async () =>
      Object.fromEntries(
        await dash.locator('figure.chart table tbody tr').evaluateAll((rows) => rows.map((r) => [r.querySelector('th')!.textContent!.trim(), Number(r.querySelector('td')!.textContent)])),
      ) as Record<string, number>;
    await today.filter({ hasText: new RegExp(`^${TODAY} today$`) }).waitFor();
    const label = (daysAgo: number) => utcDay(daysAgo).slice(5);
    const chart = await bars();
    expect(Object.keys(chart)).toHaveLength(14);
    expect(chart[label(0)]).toBe(TODAY);
    for (let d = 1; d <= 5; d++) expect(chart[label(d)]).toBe(220);
    for (let d = 6; d < 14; d++) expect(chart[label(d)]).toBe(0);
    await shot(dash, 'live-counts-01-dashboard-chart');

    // A device activating now: today's bar counts it once.
    await device('activate', busy.key, `busy-${stamp}-live`);
    await today.filter({ hasText: new RegExp(`^${TODAY + 1} today$`) }).waitFor();
    expect((await bars())[label(0)]).toBe(TODAY + 1);
    expect(errors).toEqual([]);
    await ctx.close();
  });

  it('the dashboard counts follow licenses issued and suspended elsewhere, and are not read again for a heartbeat', async () => {
    const lic = await issueLicense(editionId);
    await device('activate', lic.key, `counted-${stamp}`);
    const ctx = await browser.newContext({ viewport: { width: 1360, height: 860 }, locale: 'en-US' });
    let errors: string[] = [];
    const reads: Request[] = [];
    const dash = await signedIn(ctx, (p) => {
      errors = watchErrors(p);
      p.on('request', (r) => void (new URL(r.url()).searchParams.get('operationName') === 'DashboardStats' && reads.push(r)));
    });
    await dash.locator('[data-testid="live-status"][data-status="live"]').waitFor();
    const card = (label: string) => dash.locator('a.stat', { hasText: label }).locator('strong');
    const shows = (label: string, n: number) => card(label).filter({ hasText: new RegExp(`^${n.toLocaleString('en-US')}$`) }).waitFor();
    const count = async (label: string) => Number((await card(label).textContent())!.replace(/,/g, ''));
    const licenses = await count('Licenses');
    const suspended = await count('Suspended');
    expect(reads).toHaveLength(1);

    // A device's heartbeat reaches the feed; the counts are not read again for it.
    await device('heartbeat', lic.key, `counted-${stamp}`);
    await dash.locator('.feed li[data-type="device.heartbeat"]').first().waitFor();
    expect(reads).toHaveLength(1);

    // A license issued, then suspended, by someone else (a teammate, the billing system's API token): the cards follow.
    const other = await issueLicense(editionId);
    await shows('Licenses', licenses + 1);
    const r = await owner(`mutation($input: LicenseIdInput!) { suspendLicense(input: $input) { __typename } }`, { input: { licenseId: other.id } });
    expect(r.suspendLicense.__typename).toBe('License');
    await shows('Suspended', suspended + 1);
    // Read on opening, then once for each of those two changes: never for the heartbeat.
    expect(reads).toHaveLength(3);
    await shot(dash, 'live-counts-01b-dashboard-counts');
    expect(errors).toEqual([]);
    await ctx.close();
  });

  it('an open license page shows heartbeats from the push without reading the license, and reads it on a deactivation', async () => {
    const lic = await issueLicense(editionId);
    const fingerprint = `beating-${stamp}`;
    const hostname = `beating-host-${stamp}`;
    await device('activate', lic.key, fingerprint, { hostname, appVersion: '1.0.0' });
    await device('activate', lic.key, `other-${stamp}`, { hostname: `other-host-${stamp}` });

    const ctx = await browser.newContext({ viewport: { width: 1360, height: 860 }, locale: 'en-US' });
    // The page also reads the license every 30 s as a safety net; the test stops the browser's timers
    // (below) so that only pushes can make it read.
    await ctx.clock.install();
    let errors: string[] = [];
    const reads: Request[] = [];
    let pushes = 0;
    let live = false;
    let firstRead!: Promise<void>;
    const page = await signedIn(ctx, (p) => {
      errors = watchErrors(p);
      firstRead = new Promise<void>((resolve) => {
        const pending = new Set<Request>();
        p.on('websocket', (ws) =>
          ws.on('framereceived', (f) => {
            const text = String(f.payload);
            live ||= text.includes('"licenseLive"');
            if (text.includes('"licenseLive"') && text.includes('"eventType":"device.heartbeat"')) pushes++;
          }),
        );
        p.on('request', (r) => {
          const body = r.postData() ?? '';
          if (!/"operationName":"(License|LicenseParts)"/.test(body)) return;
          reads.push(r);
          if (live) pending.add(r);
        });
        p.on('requestfinished', (r) => pending.has(r) && resolve());
      });
    });
    await page.goto(`${server.base}/licenses/${encodeURIComponent(lic.id)}`);
    const row = page.getByRole('row', { name: new RegExp(hostname) });
    await row.getByRole('cell', { name: '1.0.0', exact: true }).waitFor();
    // The subscription's first answer makes the page read the license once: wait for it, then stop time.
    await firstRead;
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
    await page.clock.pauseAt(Date.now() + 1_000);
    const before = reads.length;

    // Three heartbeats, each with a new version: the row follows them, and nothing is read for them.
    for (const version of ['1.0.1', '1.0.2', '1.0.3']) await device('heartbeat', lic.key, fingerprint, { appVersion: version, osVersion: '14.2', platform: 'macos' });
    await row.getByRole('cell', { name: '1.0.3', exact: true }).waitFor();
    await row.getByRole('cell', { name: 'macos 14.2', exact: true }).waitFor();
    await expect.poll(() => pushes, { timeout: 20_000 }).toBe(3);
    expect(reads.slice(before).map((r) => r.postData())).toEqual([]);
    await shot(page, 'live-counts-02-license-after-heartbeats');

    // A deactivation changes the license: the page reads it again and shows the device released.
    await device('deactivate', lic.key, fingerprint);
    await row.getByRole('cell', { name: 'Released', exact: true }).waitFor();
    expect(reads.length).toBeGreaterThan(before);
    expect(reads.slice(before).every((r) => r.postData()!.includes('"operationName":"License"'))).toBe(true);
    expect(errors).toEqual([]);
    await ctx.close();
  });

  it('the compliance history lists every kind of compliance event with a readable label, settings changes too', async () => {
    const thresholds = await owner(`mutation { setComplianceThresholds(input: { metric: ACTIVATIONS, percents: [75, 100] }) { __typename } }`);
    expect(thresholds.setComplianceThresholds.__typename).toBe('ComplianceThresholds');
    const settings = await owner(`mutation { setComplianceSettings(input: { expiringLeadDays: [30, 7], heartbeatTolerancePercent: 150 }) { __typename } }`);
    expect(settings.setComplianceSettings.__typename).toBe('ComplianceSettings');
    // Then alerts: a license of one activation, asked for two (the cap reached, the second refused).
    const product = await owner(`mutation($input: CreateProductInput!) { createProduct(input: $input) { __typename ... on Product { id } } }`, { input: { name: 'Single', code: `single-${stamp}` } });
    const edition = await owner(`mutation($input: CreateEditionInput!) { createEdition(input: $input) { __typename ... on Edition { id } } }`, {
      input: { productId: product.createProduct.id, name: 'Single', code: `single-${stamp}`, licenseType: 'PERPETUAL', maxActivations: 1 },
    });
    const single = await issueLicense(edition.createEdition.id);
    await device('activate', single.key, `single-${stamp}-1`);
    const refused = await gql<{ activate: { __typename: string; code?: string } }>(server.base, null, `mutation($input: ActivateInput!) { activate(input: $input) { __typename ... on LicensingError { code } } }`, {
      input: { key: single.key, fingerprint: `single-${stamp}-2` },
    });
    expect(refused.activate).toEqual({ __typename: 'LicensingError', code: 'ACTIVATION_LIMIT_REACHED' });

    const ctx = await browser.newContext({ viewport: { width: 1360, height: 860 }, locale: 'en-US' });
    let errors: string[] = [];
    const page = await signedIn(ctx, (p) => (errors = watchErrors(p)));
    await page.goto(`${server.base}/compliance`);
    // Both happened before the page was opened: they come from the history.
    const thresholdsRow = page.locator('.feed li[data-type="compliance.thresholds_updated"]').first();
    await thresholdsRow.waitFor();
    expect(await thresholdsRow.textContent()).toContain('Capacity thresholds changed');
    expect(await thresholdsRow.textContent()).toContain('activations: 75%, 100%');
    const settingsRow = page.locator('.feed li[data-type="compliance.settings_updated"]').first();
    await settingsRow.waitFor();
    expect(await settingsRow.textContent()).toContain('Alert settings changed');
    expect(await settingsRow.textContent()).toContain('expiring-soon 30, 7 days before; heartbeat tolerance 150%');
    // The alerts raised after the settings changes, of other kinds, are there as well.
    const denied = page.locator('.feed li[data-type="compliance.activation_denied"]').first();
    await denied.waitFor();
    expect(await denied.textContent()).toContain('Activation refused: limit reached');
    const crossed = page.locator('.feed li[data-type="compliance.threshold_crossed"]').first();
    await crossed.waitFor();
    expect(await crossed.textContent()).toContain('Capacity threshold reached');
    await shot(page, 'live-counts-03-compliance-history');
    expect(errors).toEqual([]);
    await ctx.close();
  });

  it('the compliance history costs one auditEvents request for every kind, the kinds are asked once, and a read-only member reads none', async () => {
    const { webhookEventTypes } = await owner<{ webhookEventTypes: string[] }>(`{ webhookEventTypes }`);
    const kinds = webhookEventTypes.filter((t) => t.startsWith('compliance.'));
    expect(kinds.length).toBeGreaterThan(5);
    const thresholds = await owner(`mutation { setComplianceThresholds(input: { metric: SEATS, percents: [80, 100] }) { __typename } }`);
    expect(thresholds.setComplianceThresholds.__typename).toBe('ComplianceThresholds');
    const reader = { email: `compliance-reader-${stamp}@example.com`, password: 'reader-password-1' };
    const member = await owner(`mutation($input: CreateMemberInput!) { createMember(input: $input) { __typename } }`, { input: { ...reader, role: 'READ_ONLY' } });
    expect(member.createMember.__typename).toBe('Member');

    /** The page's requests of these operations, with their variables. */
    const watch = (p: Page, names: string[]) => {
      const sent: { name: string; variables: Record<string, unknown> }[] = [];
      p.on('request', (r) => {
        const url = new URL(r.url());
        if (url.pathname !== '/graphql') return;
        // urql sends a query that fits in a URL as a GET, a longer one as a POST.
        const body: { operationName?: string; variables?: Record<string, unknown> } =
          r.method() === 'GET'
            ? { operationName: url.searchParams.get('operationName') ?? undefined, variables: JSON.parse(url.searchParams.get('variables') ?? '{}') }
            : JSON.parse(r.postData() ?? '{}');
        if (body.operationName && names.includes(body.operationName)) sent.push({ name: body.operationName, variables: body.variables ?? {} });
      });
      return sent;
    };

    const ctx = await browser.newContext({ viewport: { width: 1360, height: 860 }, locale: 'en-US' });
    // No socket: the feed re-reads its history every 4 s, as while the push channel is down.
    await ctx.routeWebSocket(/\/graphql$/, (ws) => ws.close());
    let errors: string[] = [];
    const page = await signedIn(ctx, (p) => (errors = watchErrors(p)));
    const sent = watch(page, ['AuditEvents', 'EventTypes']);
    await page.goto(`${server.base}/compliance`);
    await page.locator('.feed li[data-type="compliance.thresholds_updated"]').first().waitFor();
    // The history on screen cost one request, for every kind the server names.
    expect(sent.filter((r) => r.name === 'AuditEvents')).toEqual([{ name: 'AuditEvents', variables: { first: 30, types: kinds } }]);
    // Two polls later: one request each, and the list of kinds was not asked again.
    await expect.poll(() => sent.filter((r) => r.name === 'AuditEvents').length, { timeout: 20_000, interval: 250 }).toBeGreaterThanOrEqual(3);
    expect(sent.filter((r) => r.name === 'EventTypes')).toHaveLength(1);
    const reads = sent.filter((r) => r.name === 'AuditEvents').map((r) => r.variables);
    expect(reads).toEqual(reads.map(() => ({ first: 30, types: kinds })));
    expect(errors).toEqual([]);
    await ctx.close();

    // A read-only member sees the alerts live, but no history: not a single request for it.
    const roCtx = await browser.newContext({ viewport: { width: 1360, height: 860 }, locale: 'en-US' });
    const ro = await roCtx.newPage();
    const roErrors = watchErrors(ro);
    await ro.goto(`${server.base}/signin`);
    await submitSignIn(ro, server.demo.tenant, reader.email, reader.password);
    await ro.getByRole('heading', { level: 1, name: 'Dashboard' }).waitFor();
    const roSent = watch(ro, ['AuditEvents', 'EventTypes', 'ActivityCursor']);
    await ro.goto(`${server.base}/compliance`);
    await expect.poll(() => roSent.filter((r) => r.name === 'ActivityCursor').length, { timeout: 20_000, interval: 250 }).toBe(1);
    // Alerts raised meanwhile (other tests, the scanners) may arrive live, so what is on screen is not
    // counted: the requests say that no history was read.
    expect(roSent.filter((r) => r.name !== 'ActivityCursor')).toEqual([]);
    expect(roErrors).toEqual([]);
    await roCtx.close();
  });
});
