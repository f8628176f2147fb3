import { readFileSync } from 'node:fs';
import type { Browser, Page, Request, WebSocket } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { launch, shot, submitSignIn, watchErrors } from './browser';
import { gql, startServer, type RunningServer } from './server';

let server: RunningServer;
let browser: Browser;
let page: Page;
let errors: string[];

const stamp = Date.now().toString(36);
const product = { name: `Studio ${stamp}`, code: `studio-${stamp}` };
let licenseKey = '';
let licenseUrl = '';

beforeAll(async () => {
  server = await startServer();
  browser = await launch();
  const context = await browser.newContext({ viewport: { width: 1360, height: 860 } });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.base });
  page = await context.newPage();
  page.setDefaultTimeout(15_000);
  errors = watchErrors(page);
});

afterAll(async () => {
  await browser?.close();
  await server?.stop();
});

async function signIn(email: string, password: string) {
  await page.goto(`${server.base}/`);
  await page.waitForURL(/\/signin/);
  await submitSignIn(page, server.demo.tenant, email, password);
}

async function nav(name: string) {
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name, exact: true }).click();
}

async function heading(text: string | RegExp) {
  await page.getByRole('heading', { level: 1, name: text }).waitFor();
}

describe('admin console', () => {
  it('rejects a wrong password with the server message, then signs in', async () => {
    await signIn(server.demo.email, 'not-the-password');
    // The server's ValidationError names the password field: the message shows on that input.
    const message = page.locator('#password-msg');
    await message.waitFor();
    expect(await message.textContent()).toMatch(/incorrect/i);
    expect(await page.getByLabel('Password').getAttribute('aria-invalid')).toBe('true');
    await shot(page, '01-signin-error');

    await page.getByLabel('Password').fill(server.demo.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await heading('Dashboard');
    await page.locator('.feed li').first().waitFor();
    await shot(page, '02-dashboard');
  });

  it('creates a product with a feature and a meter', async () => {
    await nav('Catalog');
    await heading('Catalog');
    await shot(page, '03-catalog');
    await page.getByRole('button', { name: 'New product' }).first().click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel('Name').fill(product.name);
    await dialog.getByLabel('Code').fill('bad code!');
    await dialog.getByRole('button', { name: 'Create product' }).click();
    await dialog.getByText(/Code may contain letters/).waitFor();
    await dialog.getByLabel('Code').fill(product.code);
    await dialog.getByRole('button', { name: 'Create product' }).click();
    await heading(product.name);

    await page.getByRole('button', { name: 'Add feature' }).click();
    await page.getByRole('dialog').getByLabel('Name').fill('PDF export');
    await page.getByRole('dialog').getByLabel('Code').fill('pdf-export');
    await page.getByRole('dialog').getByRole('button', { name: 'Add feature' }).click();
    await page.getByRole('cell', { name: 'pdf-export' }).waitFor();
    await page.getByRole('button', { name: 'Add feature' }).click();
    await page.getByRole('dialog').getByLabel('Name').fill('Projects');
    await page.getByRole('dialog').getByLabel('Code').fill('projects');
    await page.getByRole('dialog').getByRole('button', { name: 'Add feature' }).click();
    await page.getByRole('cell', { name: 'projects', exact: true }).waitFor();

    await page.getByRole('button', { name: 'Add meter' }).click();
    await page.getByRole('dialog').getByLabel('Name').fill('API calls');
    await page.getByRole('dialog').getByLabel('Code').fill('api-calls');
    await page.getByRole('dialog').getByRole('button', { name: 'Add meter' }).click();
    await page.getByRole('cell', { name: 'api-calls' }).waitFor();
  });

  it('creates an edition, with inline validation that mirrors the server', async () => {
    await page.getByRole('link', { name: 'New edition' }).first().click();
    await heading('New edition');
    await page.getByLabel('Name', { exact: true }).fill('Professional');
    await page.getByLabel('License type').selectOption('SUBSCRIPTION');
    await page.getByLabel('Seats').fill('5');
    await page.getByLabel('Seats').blur();
    await page.getByText('seats apply to FLOATING provisioning only', { exact: false }).waitFor();
    await page.getByLabel('Seats').fill('');
    await page.getByLabel('Max activations').fill('3');
    await page.getByLabel('Allowed versions').fill('>=2.0.0 <3.0.0');
    await page.getByText('PDF export').click();
    await page.getByRole('button', { name: 'Add meter quota' }).click();
    // A numeric limit: the first feature not switched on above (Projects).
    await page.getByRole('button', { name: 'Add limit' }).click();
    await page.getByLabel('Limit', { exact: true }).fill('-1');
    await page.getByLabel('Limit', { exact: true }).blur();
    await page.getByText('must not be negative').waitFor();
    await page.getByLabel('Limit', { exact: true }).fill('10');
    await shot(page, '04-edition-form');
    await page.getByRole('button', { name: 'Create edition' }).click();
    await heading(product.name);
    await page.getByRole('cell', { name: /Professional/ }).waitFor();
    await page.getByRole('cell', { name: 'pdf-export, projects = 10' }).waitFor();
    await shot(page, '05-product');
  });

  it('issues a license from the edition and shows its token keys once', async () => {
    await page.getByRole('link', { name: 'Issue license' }).first().click();
    await heading('New license');
    await page.getByLabel('Name').fill('E2E workstation pool');
    await page.getByLabel('Token keys').fill('2');
    await shot(page, '06-new-license');
    await page.getByRole('button', { name: 'Issue license' }).click();
    const key = page.getByTestId('created-key');
    await key.waitFor();
    licenseKey = (await key.textContent())?.trim() ?? '';
    expect(licenseKey).toMatch(/^LIC-/);
    expect(await page.locator('.tokens li').count()).toBe(2);
    await shot(page, '07-license-issued');
    await page.getByRole('link', { name: 'Open license' }).click();
    await page.getByRole('heading', { level: 1, name: licenseKey }).waitFor();
    await page.getByText('projects = 10').waitFor();
    licenseUrl = page.url();
  });

  it('finds the license in the list by search', async () => {
    await nav('Licenses');
    await heading('Licenses');
    await page.getByLabel('Search licenses').fill(licenseKey);
    await page.waitForURL(/q=/);
    await page.getByRole('link', { name: licenseKey }).waitFor();
    expect(await page.locator('tbody tr').count()).toBe(1);
    await page.getByLabel('Search licenses').fill('');
    await page.waitForURL((u) => !u.search.includes('q='));
    await page.locator('tbody tr').nth(1).waitFor();
    await shot(page, '08-licenses');
  });

  it('pages through the licenses connection', async () => {
    const { products } = await gql<{ products: { editions: { id: string; deploymentMode: string }[] }[] }>(
      server.base,
      server.demo.apiToken,
      `{ products { editions { id deploymentMode } } }`,
    );
    const editionId = products.flatMap((p) => p.editions).find((e) => e.deploymentMode === 'ONLINE')!.id;
    for (let i = 0; i < 22; i++) {
      await gql(server.base, server.demo.apiToken, `mutation($input: CreateLicenseInput!) { createLicense(input: $input) { __typename } }`, {
        input: { editionId, name: `Bulk ${i}` },
      });
    }
    await page.goto(`${server.base}/licenses`);
    await page.getByText(/Showing 25 of \d+/).waitFor();
    const total = Number((await page.getByText(/Showing 25 of \d+/).textContent())!.match(/of (\d+)/)![1]);
    expect(total).toBeGreaterThan(25);
    await page.getByRole('button', { name: 'Next' }).click();
    await page.waitForURL(/after=/);
    await page.getByText(`Showing ${total - 25} of ${total}`).waitFor();
    expect(await page.getByRole('button', { name: 'Next' }).isDisabled()).toBe(true);
    await page.getByRole('button', { name: 'Previous' }).click();
    await page.waitForURL(/before=/);
    await page.getByText(`Showing 25 of ${total}`).waitFor();
  });

  it('imports licenses, listing bad rows by line', async () => {
    await page.goto(`${server.base}/licenses`);
    await page.getByRole('link', { name: 'Import' }).click();
    await heading('Import licenses');
    const data = page.getByLabel('Contents');
    await data.fill(`product,edition,name\n${product.code},professional,Imported one\n${product.code},no-such-edition,Broken`);
    await page.getByRole('button', { name: 'Import' }).click();
    await page.getByRole('cell', { name: /has no edition "no-such-edition"/ }).waitFor();
    await shot(page, '08b-import-errors');
    await data.fill(`product,edition,name\n${product.code},professional,Imported one`);
    await page.getByRole('button', { name: 'Import' }).click();
    await page.getByText('Imported 1 license.').waitFor();
  });

  it('shows activation progress updating live, then releases the device', async () => {
    await page.goto(licenseUrl);
    const progress = page.getByTestId('activation-progress');
    await page.waitForFunction(() => document.querySelector('[data-testid="activation-progress"]')?.textContent?.trim() === '0 / 3');

    const activated = await gql<{ activate: { __typename: string } }>(
      server.base,
      null,
      `mutation($input: ActivateInput!) { activate(input: $input) { __typename } }`,
      { input: { key: licenseKey, fingerprint: `fp-${stamp}`, client: { hostname: 'build-agent-7', platform: 'linux', osVersion: '6.8', appVersion: '2.4.1' } } },
    );
    expect(activated.activate.__typename).toBe('ActivateSuccess');
    // No reload: the live channel (or the refresh loop) brings the new state in.
    await page.waitForFunction(() => document.querySelector('[data-testid="activation-progress"]')?.textContent?.trim() === '1 / 3', null, {
      timeout: 15_000,
    });
    await page.getByRole('cell', { name: 'build-agent-7' }).waitFor();
    expect(await progress.textContent()).toContain('1 / 3');
    await shot(page, '09-license-detail');

    await page.getByRole('button', { name: 'Release' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Release device' }).click();
    await page.getByText('released; its activation is free again').waitFor();
    await page.waitForFunction(() => document.querySelector('[data-testid="activation-progress"]')?.textContent?.trim() === '0 / 3');
  });

  it('edits the name and customer of a license', async () => {
    await page.getByRole('button', { name: 'Edit details' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel('Name').fill('E2E render farm');
    await dialog.getByLabel('Customer').selectOption({ index: 1 });
    const customer = (await dialog.getByLabel('Customer').locator('option:checked').textContent())!.replace(/ \(.*\)$/, '');
    await dialog.getByRole('button', { name: 'Save' }).click();
    await page.getByText('Details saved.').waitFor();
    await page.locator('.breadcrumb', { hasText: 'E2E render farm' }).waitFor();
    await page.locator('dl.props dd a', { hasText: customer }).waitFor();
  });

  it('suspends and reinstates with confirmation', async () => {
    await page.getByRole('button', { name: 'Suspend' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Suspend' }).click();
    await page.getByText('License suspended.').waitFor();
    await page.locator('.meta .badge', { hasText: 'Suspended' }).waitFor();
    await page.getByRole('button', { name: 'Reinstate' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Reinstate' }).click();
    await page.getByText('License reinstated.').waitFor();
  });

  it('renews and edits entitlements (pending sync)', async () => {
    await page.getByRole('button', { name: 'Renew / extend' }).click();
    await page.getByRole('dialog').getByLabel('Days to add').fill('30');
    await page.getByRole('dialog').getByRole('button', { name: 'Renew' }).click();
    await page.getByText(/Renewed; now expires/).waitFor();

    await page.getByRole('button', { name: 'Edit entitlements' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel('Max activations').fill('5');
    await dialog.getByRole('button', { name: 'Save changes' }).click();
    await page.getByText('Entitlements updated').waitFor();
    await page.waitForFunction(() => document.querySelector('[data-testid="activation-progress"]')?.textContent?.trim() === '0 / 5');

    await page.getByRole('link', { name: 'Full history' }).click();
    await heading('Audit log');
    await page.getByText('One license').waitFor();
    await page.locator('tbody tr', { hasText: 'license.updated' }).first().waitFor();
    expect(await page.locator('tbody tr', { hasText: 'product.created' }).count()).toBe(0);
  });

  it('shows the new events in the dashboard feed and chart', async () => {
    await nav('Dashboard');
    await heading('Dashboard');
    await page.locator('.feed li[data-type="activation.created"]').first().waitFor();
    expect(await page.getByTestId('activations-today').textContent()).toContain('1 today');
    // A second device activates while the dashboard is open: feed and chart update without reload.
    const second = await gql<{ activate: { __typename: string; message?: string } }>(
      server.base,
      null,
      `mutation($input: ActivateInput!) { activate(input: $input) { __typename ... on LicensingError { message } } }`,
      { input: { key: licenseKey, fingerprint: `fp2-${stamp}`, client: { hostname: 'design-laptop', appVersion: '2.5.0' } } },
    );
    expect(second.activate).toEqual({ __typename: 'ActivateSuccess' });
    await page.waitForFunction(() => document.querySelector('[data-testid="activations-today"]')?.textContent?.includes('2 today'), null, { timeout: 15_000 });
    const usage = await gql<{ recordUsage: { __typename: string } }>(
      server.base,
      null,
      `mutation($input: AuthorizeUsageInput!) { recordUsage(input: $input) { __typename } }`,
      { input: { key: licenseKey, fingerprint: `fp2-${stamp}`, meter: 'api-calls', quantity: 120, idempotencyKey: `use-${stamp}` } },
    );
    expect(usage.recordUsage.__typename).toBe('UsageTicket');
    await page.reload();
    await page.getByRole('heading', { name: 'Usage this period' }).waitFor();
    await page.getByRole('meter', { name: 'api-calls used' }).waitFor();
    await shot(page, '10-dashboard-activity');
  });

  it('streams the feed over graphql-ws with the session cookie, not SSE', async () => {
    const pushed: string[] = [];
    const overHttp: string[] = [];
    const onSocket = (ws: WebSocket) => {
      if (!new URL(ws.url()).pathname.startsWith('/graphql')) return;
      ws.on('framereceived', ({ payload }) => {
        const message = JSON.parse(String(payload)) as { type: string; payload?: { data?: { activity?: { type: string; payload: { name?: string } } } } };
        const event = message.type === 'next' ? message.payload?.data?.activity : undefined;
        if (event) pushed.push(`${event.type} ${event.payload.name ?? ''}`);
      });
    };
    const onRequest = (r: Request) => {
      const sent = decodeURIComponent(`${r.url()} ${r.postData() ?? ''}`.replace(/\+/g, ' '));
      if (/\bsubscription \w/.test(sent)) overHttp.push(r.url());
    };
    page.on('websocket', onSocket);
    page.on('request', onRequest);
    onTestFinished(() => {
      page.off('websocket', onSocket);
      page.off('request', onRequest);
    });
    // A fresh load, so the socket opens while the listener above is attached.
    await page.goto(`${server.base}/`);
    await heading('Dashboard');
    await page.locator('.live.on').waitFor();
    const name = `Socket Co ${stamp}`;
    await gql(server.base, server.demo.apiToken, `mutation($name: String!) { createCustomer(input: { name: $name }) { __typename } }`, { name });
    await expect.poll(() => pushed, { timeout: 10_000 }).toContain(`customer.created ${name}`);
    await page.locator('.feed li[data-type="customer.created"]').first().waitFor();
    expect(await page.locator('.live.on').count()).toBe(1);
    expect(overHttp).toEqual([]);
  });

  it('shows the live seat map of a floating license', async () => {
    const { licenses } = await gql<{ licenses: { edges: { node: { id: string; key: string; provisioning: string } }[] } }>(
      server.base,
      server.demo.apiToken,
      `{ licenses(first: 50) { edges { node { id key provisioning } } } }`,
    );
    const floating = licenses.edges.map((e) => e.node).find((l) => l.provisioning === 'FLOATING');
    expect(floating).toBeDefined();
    await page.goto(`${server.base}/licenses/${encodeURIComponent(floating!.id)}`);
    const inUse = page.getByTestId('seats-in-use');
    await inUse.waitFor();
    const before = Number((await inUse.textContent())?.trim().split(' ')[0]);
    const seat = await gql<{ checkoutSeat: { __typename: string } }>(
      server.base,
      null,
      `mutation($input: CheckoutSeatInput!) { checkoutSeat(input: $input) { __typename } }`,
      { input: { key: floating!.key, fingerprint: `seat-${stamp}`, user: 'ada@umbrella.example' } },
    );
    expect(seat.checkoutSeat.__typename).toBe('SeatLease');
    await page.waitForFunction((n) => document.querySelector('[data-testid="seats-in-use"]')?.textContent?.trim().startsWith(`${n} /`), before + 1, {
      timeout: 15_000,
    });
    await page.getByRole('cell', { name: /ada@umbrella.example/ }).waitFor();
    await shot(page, '10b-seat-map');
  });

  it('runs the offline workflow: license file from a fingerprint, deactivation file checked', async () => {
    const { licenses } = await gql<{ licenses: { edges: { node: { id: string; key: string; allowOffline: boolean; status: string } }[] } }>(
      server.base,
      server.demo.apiToken,
      `{ licenses(first: 50) { edges { node { id key allowOffline status } } } }`,
    );
    const offline = licenses.edges.map((e) => e.node).find((l) => l.allowOffline && l.status === 'ACTIVE');
    expect(offline).toBeDefined();
    await page.goto(`${server.base}/licenses/${encodeURIComponent(offline!.id)}`);
    await page.locator('#main').getByRole('link', { name: 'Offline activation' }).click();
    await heading('Offline activation');
    expect(await page.getByLabel('License key').inputValue()).toBe(offline!.key);
    await page.getByLabel('Fingerprint only').check();
    await page.getByLabel('Machine fingerprint').fill(`airgap-${stamp}`);
    await page.getByRole('button', { name: 'Issue license file' }).click();
    const file = page.getByTestId('license-file');
    await file.waitFor();
    expect(await file.inputValue()).toContain('-----BEGIN TESSERA LICENSE-----');
    const downloading = page.waitForEvent('download');
    await page.getByRole('button', { name: 'Download license file' }).click();
    expect((await downloading).suggestedFilename()).toBe(`${offline!.key}.lic`);
    // The update bundle for the site operator: license file, public keys, README, as a .tar.
    const bundling = page.waitForEvent('download');
    await page.getByRole('link', { name: 'Download update bundle (.tar)' }).click();
    const bundle = await bundling;
    expect(bundle.suggestedFilename()).toBe(`tessera-offline-${offline!.key}.tar`);
    const tarText = readFileSync((await bundle.path())!, 'latin1');
    for (const name of ['license.lic', 'jwks.json', 'README.txt', '-----BEGIN TESSERA LICENSE-----']) expect(tarText).toContain(name);

    await page.getByLabel('Deactivation file', { exact: true }).fill('-----BEGIN TESSERA DEACTIVATION-----\nnot a real file\n-----END TESSERA DEACTIVATION-----');
    await page.getByRole('button', { name: 'Import deactivation' }).click();
    await page.locator('form', { hasText: 'Import a deactivation file' }).getByRole('alert').waitFor();
    await shot(page, '11a-offline');

    // The offline machine counts as a device of the license.
    await page.goto(`${server.base}/licenses/${encodeURIComponent(offline!.id)}`);
    await page.getByRole('cell', { name: new RegExp(`airgap-${stamp}`) }).waitFor();
  });

  it('creates a customer', async () => {
    await nav('Customers');
    await heading('Customers');
    await page.getByRole('button', { name: 'New customer' }).first().click();
    await page.getByRole('dialog').getByLabel('Name').fill(`Acme ${stamp}`);
    await page.getByRole('dialog').getByLabel('Email').fill('licensing@acme.example');
    await page.getByRole('dialog').getByRole('button', { name: 'Create customer' }).click();
    await heading(`Acme ${stamp}`);
    await shot(page, '11-customer');

    // Renamed, its email cleared; then, holding no license, deleted.
    await page.getByRole('button', { name: 'Edit customer' }).click();
    const edit = page.getByRole('dialog');
    expect(await edit.getByLabel('Email').inputValue()).toBe('licensing@acme.example');
    await edit.getByLabel('Name').fill(`Acme ${stamp} GmbH`);
    await edit.getByLabel('Email').fill('');
    await edit.getByRole('button', { name: 'Save customer' }).click();
    await heading(`Acme ${stamp} GmbH`);
    await page.getByText(`Customer “Acme ${stamp} GmbH” saved.`).waitFor();
    await page.getByText(/^No email · customer since/).waitFor();
    const lookup = `query($q: String!) { customers(first: 5, search: $q) { edges { node { id name email } } } }`;
    type Found = { customers: { edges: { node: { id: string; name: string; email: string | null; licenseCount?: number } }[] } };
    const saved = await gql<Found>(server.base, server.demo.apiToken, lookup, { q: `Acme ${stamp}` });
    expect(saved.customers.edges.map((e) => e.node)).toEqual([{ id: expect.any(String), name: `Acme ${stamp} GmbH`, email: null }]);
    await page.getByRole('button', { name: 'Delete customer' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Delete customer' }).click();
    await heading('Customers');
    expect((await gql<Found>(server.base, server.demo.apiToken, lookup, { q: `Acme ${stamp}` })).customers.edges).toEqual([]);

    await nav('Customers');
    await heading('Customers');
    await shot(page, '12-customers');
    // Each row says how many licenses the customer holds, as the server counts them.
    const umbrella = await gql<Found>(server.base, server.demo.apiToken, `query { customers(first: 5, search: "Umbrella Labs") { edges { node { id name email licenseCount } } } }`);
    const held = umbrella.customers.edges[0]!.node.licenseCount;
    expect(held).toBeGreaterThan(0);
    expect(await page.getByRole('row', { name: /Umbrella Labs/ }).getByRole('cell').nth(2).textContent()).toBe(String(held));
    await page.getByRole('link', { name: 'Umbrella Labs' }).click();
    await heading('Umbrella Labs');
    await page.locator('tbody tr').first().waitFor();
    // A customer holding licenses offers no delete (the server would refuse it).
    await page.getByRole('button', { name: 'Edit customer' }).waitFor();
    expect(await page.getByRole('button', { name: 'Delete customer' }).count()).toBe(0);
    await shot(page, '12b-customer-licenses');
    await page.getByRole('link', { name: 'Issue license' }).click();
    await heading('New license');
    expect(await page.getByLabel('Customer').locator('option:checked').textContent()).toContain('Umbrella Labs');
  });

  it('creates an API token whose secret shows once', async () => {
    await nav('API tokens');
    await heading('API tokens');
    await page.getByRole('button', { name: 'New token' }).click();
    await page.getByRole('dialog').getByLabel('Name').fill('CI deploys');
    await page.getByRole('dialog').getByLabel('Expires').selectOption({ label: '90 days' });
    await page.getByRole('dialog').getByRole('button', { name: 'Create token' }).click();
    const secret = await page.getByTestId('token-secret').textContent();
    expect(secret).toMatch(/^tsr_/);
    // Its row says when it expires, 90 days from now; the server holds the same instant.
    const row = page.getByRole('row').filter({ hasText: 'CI deploys' });
    const shown = (await row.getByTestId('token-expires').textContent())?.trim();
    expect(shown).not.toBe('Never');
    const { apiTokens } = await gql<{ apiTokens: { name: string; expiresAt: string | null }[] }>(server.base, server.demo.apiToken, `{ apiTokens { name expiresAt } }`);
    const stored = apiTokens.find((t) => t.name === 'CI deploys')!;
    expect(shown).toContain(String(new Date(stored.expiresAt!).getFullYear()));
    const days = (new Date(stored.expiresAt!).getTime() - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(89.9);
    expect(days).toBeLessThanOrEqual(90);
    await shot(page, '13-api-tokens');
    await page.getByRole('button', { name: 'Done' }).click();
    expect(await page.getByTestId('token-secret').count()).toBe(0);
  });

  it('shows members, signing keys and the audit log', async () => {
    await nav('Members');
    await heading('Members');
    await page.getByRole('button', { name: 'Add member' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel('Email').fill(`viewer-${stamp}@example.com`);
    await dialog.getByLabel('Role').selectOption('READ_ONLY');
    await dialog.getByLabel('Initial password').fill('correct horse battery');
    await dialog.getByRole('button', { name: 'Add member' }).click();
    await page.getByText(`viewer-${stamp}@example.com can now sign in`).waitFor();
    await shot(page, '14-members');

    await nav('Signing keys');
    await heading('Signing keys');
    await shot(page, '15-signing-keys');

    await nav('Audit log');
    await heading('Audit log');
    await page.getByRole('button', { name: 'Verify chain' }).click();
    await page.getByText(/Chain intact|Chain broken/).waitFor();
    // The type filter offers every type the server writes (its list, not a copy in the console).
    const offered = await page.locator('#audit-types option').evaluateAll((os) => os.map((o) => (o as HTMLOptionElement).value));
    expect(offered).toEqual(expect.arrayContaining(['license.created', 'member.role_changed', 'compliance.heartbeat_timeout', 'webhook.created', 'lease.expired']));
    await shot(page, '16-audit-log');
  });

  it('shows compliance, and flags a license once a lower threshold is set', async () => {
    await nav('Compliance');
    await heading('Compliance');
    await page.getByRole('button', { name: 'Default thresholds' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel('Percents of the cap').fill('10, 100');
    await dialog.getByRole('button', { name: 'Save thresholds' }).click();
    await page.getByText('Default activations thresholds set to 10%, 100%.').waitFor();
    // The e2e license holds 1 of 5 activations (one was released): 20% is over the new 10% threshold.
    await page.getByRole('link', { name: licenseKey }).waitFor();
    await shot(page, '16b-compliance');

    // Expiring-soon lead days and heartbeat tolerance: the server's range check lands on the field.
    await page.getByRole('button', { name: 'Alert settings' }).click();
    const settings = page.getByRole('dialog');
    expect(await settings.getByLabel('Expiring-soon lead days').inputValue()).toBe('30, 7, 1');
    await settings.getByLabel('Expiring-soon lead days').fill('400, 7');
    await settings.getByRole('button', { name: 'Save settings' }).click();
    await settings.getByText(/at most 365 days/).first().waitFor();
    await settings.getByLabel('Expiring-soon lead days').fill('14, 3');
    await settings.getByLabel('Heartbeat tolerance (%)').fill('50');
    await settings.getByRole('button', { name: 'Save settings' }).click();
    await page.getByText('Expiring-soon alerts 14, 3 days before expiry; heartbeat tolerance 50% of the interval.').waitFor();
  });

  it('works from the keyboard and on a narrow screen', async () => {
    await nav('Customers');
    await heading('Customers');
    await page.getByRole('button', { name: 'New customer' }).first().focus();
    await page.keyboard.press('Enter');
    const dialog = page.getByRole('dialog');
    await dialog.waitFor();
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden' });
    await page.getByRole('button', { name: 'New customer' }).first().focus();
    await page.keyboard.press('Enter');
    // Reopened at once after Escape; focus lands in the dialog's first field; Enter in a field submits.
    await page.waitForFunction(() => document.activeElement?.tagName === 'INPUT' && !!document.activeElement.closest('dialog'));
    await page.keyboard.type(`Keyboard Co ${stamp}`);
    await page.keyboard.press('Enter');
    await heading(`Keyboard Co ${stamp}`);

    await page.setViewportSize({ width: 420, height: 860 });
    await page.goto(licenseUrl);
    await page.getByRole('heading', { level: 1, name: licenseKey }).waitFor();
    await page.locator('.feed li').first().waitFor();
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(420);
    await shot(page, '18-narrow-license');
    await page.setViewportSize({ width: 1360, height: 860 });
  });

  it('shows a read-only member no buttons that would fail', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL(/\/signin/);
    await submitSignIn(page, server.demo.tenant, `viewer-${stamp}@example.com`, 'correct horse battery');
    await heading('Dashboard');
    const mainNav = page.getByRole('navigation', { name: 'Main' });
    for (const hidden of ['Audit log', 'Members', 'API tokens']) expect(await mainNav.getByRole('link', { name: hidden }).count()).toBe(0);
    await page.goto(licenseUrl);
    await page.getByRole('heading', { level: 1, name: licenseKey }).waitFor();
    for (const button of ['Suspend', 'Revoke', 'Renew / extend', 'Edit entitlements']) {
      expect(await page.getByRole('button', { name: button }).count()).toBe(0);
    }
    await shot(page, '17-license-read-only');
    await nav('Licenses');
    await heading('Licenses');
    expect(await page.getByRole('link', { name: 'New license' }).count()).toBe(0);
  });

  it('ran without console errors', () => {
    expect(errors).toEqual([]);
  });
});
