import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launch, shot, submitSignIn, watchErrors } from './browser';
import { gql, startServer, type RunningServer } from './server';

// What operations and customer-success people do all day: open bookmarks and reload pages, pick
// dates, follow live feeds. Each test signs in its own browser context.

let server: RunningServer;
let browser: Browser;

beforeAll(async () => {
  server = await startServer();
  browser = await launch();
});

afterAll(async () => {
  await browser?.close();
  await server?.stop();
});

async function signedIn(options: { timezoneId?: string; email?: string; password?: string } = {}): Promise<{ context: BrowserContext; page: Page; errors: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1360, height: 860 }, timezoneId: options.timezoneId, locale: 'en-US' });
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  const errors = watchErrors(page);
  await page.goto(`${server.base}/signin`);
  await submitSignIn(page, server.demo.tenant, options.email ?? server.demo.email, options.password ?? server.demo.password);
  await page.getByRole('heading', { level: 1, name: 'Dashboard' }).waitFor();
  return { context, page, errors };
}

/** A slow network for the question "who is signed in?", as on a busy or distant server. */
async function slowViewer(page: Page) {
  await page.route('**/graphql', async (route) => {
    const request = route.request();
    if (`${request.url()} ${request.postData() ?? ''}`.includes('query Viewer')) await new Promise((r) => setTimeout(r, 400));
    await route.continue();
  });
}

describe('deep links and reloads', () => {
  it('opens a bookmarked page that depends on the role as the role allows, not as if signed out', async () => {
    const { context, page, errors } = await signedIn();
    await slowViewer(page);
    // A reload (or a bookmark, or a link from a ticket) starts the app afresh on that page.
    await page.goto(`${server.base}/audit-log`);
    await page.getByRole('heading', { level: 1, name: 'Audit log' }).waitFor();
    expect(new URL(page.url()).pathname).toBe('/audit-log');

    await page.reload();
    await page.getByRole('heading', { level: 1, name: 'Audit log' }).waitFor();
    await shot(page, 'ops-01-audit-log-reloaded');
    expect(errors).toEqual([]);
    await context.close();
  });

  it('reloads the offline activation page opened from a license with its key, and says when a key names no license', async () => {
    const { context, page, errors } = await signedIn();
    const { licenses } = await gql<{ licenses: { edges: { node: { key: string } }[] } }>(server.base, server.demo.apiToken, `{ licenses(first: 1) { edges { node { key } } } }`);
    const { key } = licenses.edges[0]!.node;
    // The page's own address, as the license page links to it and a reload or a new tab asks for it.
    await page.goto(`${server.base}/offline?key=${encodeURIComponent(key)}`);
    await page.getByRole('heading', { level: 1, name: 'Offline activation' }).waitFor();
    expect(await page.getByLabel('License key').inputValue()).toBe(key);
    await page.reload();
    await page.getByRole('heading', { level: 1, name: 'Offline activation' }).waitFor();
    expect(await page.getByLabel('License key').inputValue()).toBe(key);

    // A key read over the phone with one character wrong: the form says there is no such license.
    await page.getByLabel('License key').fill(`${key.slice(0, -1)}${key.endsWith('A') ? 'B' : 'A'}`);
    await page.getByLabel('Fingerprint only').check();
    await page.getByLabel('Machine fingerprint').fill('typo-machine');
    await page.getByRole('button', { name: 'Issue license file' }).click();
    await page.getByText('No license with this key').waitFor();
    expect(await page.locator('#main').textContent()).not.toContain('Prisma');
    expect(errors).toEqual([]);
    await context.close();
  });
});

describe('typing a search', () => {
  /**
   * Types `first`, holds the list's answer for it (a slow network) while `rest` is typed, then lets it
   * through: once that answer is drawn (`drawn`), the box must still hold everything typed, and search for
   * it when the typing pauses.
   */
  async function typeDuringLoad(page: Page, box: string, operationName: string, first: string, rest: string, drawn: () => Promise<void>) {
    let seen!: () => void;
    const held = new Promise<void>((resolve) => (seen = resolve));
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const api = (u: URL) => u.pathname === '/graphql';
    await page.route(api, async (route) => {
      // The console sends its queries as GET, the operation and its variables in the query string.
      const params = new URL(route.request().url()).searchParams;
      const variables = JSON.parse(params.get('variables') ?? '{}') as { search?: string };
      if (params.get('operationName') === operationName && variables.search === first) {
        seen();
        await released;
      }
      await route.continue();
    });
    // From here the page's timers (the pause before a search is sent) run only when the test moves time.
    await page.clock.pauseAt((await page.evaluate(() => Date.now())) + 1_000);
    const input = page.getByLabel(box);
    await input.fill(first);
    await page.clock.runFor(1_000);
    await held;
    await input.pressSequentially(rest);
    release();
    await drawn();
    expect(await input.inputValue()).toBe(first + rest);
    await page.clock.runFor(1_000);
    await page.waitForURL((u) => u.searchParams.get('q') === first + rest);
    expect(await input.inputValue()).toBe(first + rest);
    await page.unroute(api);
    await page.clock.resume();
  }

  it('keeps the letters typed while the results of the first ones load, for licenses and customers', async () => {
    const { context, page, errors } = await signedIn();
    await context.clock.install();
    await page.goto(`${server.base}/licenses`);
    await page.getByRole('heading', { level: 1, name: 'Licenses' }).waitFor();
    await typeDuringLoad(page, 'Search licenses', 'Licenses', 'Umbrella', ' plant', () => page.getByText(/licenses? match these filters/).waitFor());
    await page.getByText('1 license match these filters').waitFor();
    expect(await page.locator('tbody tr').allTextContents()).toEqual([expect.stringContaining('Umbrella plant')]);

    await page.goto(`${server.base}/customers`);
    await page.getByRole('heading', { level: 1, name: 'Customers' }).waitFor();
    await page.getByRole('link', { name: 'Globex Corporation' }).waitFor();
    await typeDuringLoad(page, 'Search customers', 'Customers', 'Umb', 'rella', () => page.getByRole('link', { name: 'Globex Corporation' }).waitFor({ state: 'detached' }));
    await page.getByRole('link', { name: 'Umbrella Labs' }).waitFor();
    await shot(page, 'ops-08-search-typed-during-load');
    expect(errors).toEqual([]);
    await context.close();
  });
});

describe('dates in the user\'s time zone', () => {
  it('keeps the expiry date a user east of UTC picks, at issue and at renewal', async () => {
    const { context, page, errors } = await signedIn({ timezoneId: 'Asia/Tokyo' });
    await page.goto(`${server.base}/licenses/new`);
    await page.getByRole('heading', { level: 1, name: 'New license' }).waitFor();
    await page.getByLabel('Name').fill('Tokyo office');
    await page.getByLabel('Expires on').fill('2027-03-31');
    await page.getByRole('button', { name: 'Issue license' }).click();
    await page.getByTestId('created-key').waitFor();
    await page.getByRole('link', { name: 'Open license' }).click();
    const expires = page.locator('dt:text-is("Expires") + dd');
    await expires.waitFor();
    expect(await expires.textContent()).toMatch(/^Mar 31, 2027/);

    await page.getByRole('button', { name: 'Renew / extend' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel('Set an expiry date').check();
    await dialog.getByLabel('New expiry').fill('2028-06-30');
    await dialog.getByRole('button', { name: 'Renew' }).click();
    await page.getByText('Renewed; now expires Jun 30, 2028.').waitFor();
    expect(await expires.textContent()).toMatch(/^Jun 30, 2028/);
    await shot(page, 'ops-02-renewed-tokyo');
    expect(errors).toEqual([]);
    await context.close();
  });
});

describe('a tenant with more customers than a drop-down lists', () => {
  let lastId = '';

  beforeAll(async () => {
    // 210 customers named before the last one, which sorts past the first 200.
    for (let batch = 0; batch < 14; batch++) {
      const fields = Array.from({ length: 15 }, (_, i) => {
        const n = String(batch * 15 + i).padStart(3, '0');
        return `c${n}: createCustomer(input: { name: "Aardvark ${n}" }) { __typename }`;
      });
      await gql(server.base, server.demo.apiToken, `mutation { ${fields.join('\n')} }`);
    }
    const d = await gql<{ createCustomer: { id: string } }>(
      server.base,
      server.demo.apiToken,
      `mutation { createCustomer(input: { name: "Zephyr Holdings", email: "it@zephyr.example" }) { ... on Customer { id } } }`,
    );
    lastId = d.createCustomer.id;
  });

  it('issues a license to a customer past the first 200 from its page, and keeps it when the details are edited', async () => {
    const { context, page, errors } = await signedIn();
    await page.goto(`${server.base}/customers/${encodeURIComponent(lastId)}`);
    await page.getByRole('heading', { level: 1, name: 'Zephyr Holdings' }).waitFor();
    await page.getByRole('link', { name: 'Issue license' }).click();
    await page.getByRole('heading', { level: 1, name: 'New license' }).waitFor();
    expect(await page.getByLabel('Customer').locator('option:checked').textContent()).toBe('Zephyr Holdings (it@zephyr.example)');
    await page.getByRole('button', { name: 'Issue license' }).click();
    await page.getByTestId('created-key').waitFor();
    await page.getByRole('link', { name: 'Open license' }).click();
    const customer = page.locator('dt:text-is("Customer") + dd');
    await customer.getByRole('link', { name: 'Zephyr Holdings' }).waitFor();

    // Renaming the license must not drop its customer.
    await page.getByRole('button', { name: 'Edit details' }).click();
    const dialog = page.getByRole('dialog');
    expect(await dialog.getByLabel('Customer').locator('option:checked').textContent()).toBe('Zephyr Holdings (it@zephyr.example)');
    await dialog.getByLabel('Name').fill('Zephyr build farm');
    await dialog.getByRole('button', { name: 'Save' }).click();
    await page.getByText('Details saved.').waitFor();
    await page.locator('.breadcrumb', { hasText: 'Zephyr build farm' }).waitFor();
    const id = decodeURIComponent(new URL(page.url()).pathname.split('/').pop()!);
    const d = await gql<{ node: { customer: { name: string } | null } }>(server.base, server.demo.apiToken, `query($id: ID!) { node(id: $id) { ... on License { customer { name } } } }`, { id });
    expect(d.node.customer?.name).toBe('Zephyr Holdings');
    await customer.getByRole('link', { name: 'Zephyr Holdings' }).waitFor();

    // The licenses list filtered by that customer names it in the filter.
    await page.goto(`${server.base}/licenses?customer=${encodeURIComponent(lastId)}`);
    await page.getByText('1 license match these filters').waitFor();
    expect(await page.getByLabel('Customer').locator('option:checked').textContent()).toBe('Zephyr Holdings');
    await shot(page, 'ops-03-filtered-by-customer-201');
    expect(errors).toEqual([]);
    await context.close();
  });
});

describe('renewing', () => {
  it('is not offered for a perpetual license, and a refused date is said once, on its field', async () => {
    type Licenses = { licenses: { edges: { node: { id: string; type: string; edition: { id: string; licenseType: string } } }[] } };
    const { licenses } = await gql<Licenses>(server.base, server.demo.apiToken, `{ licenses(first: 50, status: ACTIVE) { edges { node { id type edition { id licenseType } } } } }`);
    const all = licenses.edges.map((e) => e.node);
    const perpetual = all.find((l) => l.type === 'PERPETUAL')!;
    const { context, page, errors } = await signedIn();
    await page.goto(`${server.base}/licenses/${encodeURIComponent(perpetual.id)}`);
    await page.getByRole('button', { name: 'Suspend' }).waitFor();
    expect(await page.getByRole('button', { name: 'Renew / extend' }).count()).toBe(0);

    // A subscription that starts in 60 days: an expiry before that is refused by the server.
    const day = 86_400_000;
    const editionId = all.find((l) => l.edition.licenseType === 'SUBSCRIPTION')!.edition.id;
    const created = await gql<{ createLicense: { license: { id: string } } }>(
      server.base,
      server.demo.apiToken,
      `mutation($input: CreateLicenseInput!) { createLicense(input: $input) { ... on CreateLicensePayload { license { id } } } }`,
      { input: { editionId, name: 'Starts later', startsAt: new Date(Date.now() + 60 * day).toISOString(), expiresAt: new Date(Date.now() + 400 * day).toISOString() } },
    );
    await page.goto(`${server.base}/licenses/${encodeURIComponent(created.createLicense.license.id)}`);
    await page.getByRole('button', { name: 'Renew / extend' }).click();
    const renew = page.getByRole('dialog');
    await renew.getByLabel('Set an expiry date').check();
    await renew.getByLabel('New expiry').fill(new Date(Date.now() + 30 * day).toISOString().slice(0, 10));
    await renew.getByRole('button', { name: 'Renew' }).click();
    await renew.getByText('must be after the license starts (startsAt)').waitFor();
    expect(await renew.getByRole('alert').count()).toBe(0);
    expect(await renew.textContent()).not.toContain('expiresAt:');
    await shot(page, 'ops-09-renew-before-start');
    expect(errors).toEqual([]);
    await context.close();
  });
});

describe('numbers past what the server takes', () => {
  it('are refused on their field with the rule, never with a raw GraphQL error, and change nothing', async () => {
    const { context, page, errors } = await signedIn();
    await page.goto(`${server.base}/licenses?status=ACTIVE`);
    await page.locator('tbody tr a.key').first().click();
    await page.getByRole('button', { name: 'Renew / extend' }).click();
    const renew = page.getByRole('dialog');
    const before = await page.locator('dt:text-is("Expires") + dd').textContent();
    await renew.getByLabel('Days to add').fill('99999999999');
    await renew.getByRole('button', { name: 'Renew' }).click();
    await renew.getByText('must be at most 36500').waitFor();
    expect(await renew.textContent()).not.toMatch(/Variable|32-bit/);
    await renew.getByRole('button', { name: 'Cancel' }).click();
    expect(await page.locator('dt:text-is("Expires") + dd').textContent()).toBe(before);

    await page.goto(`${server.base}/compliance`);
    await page.getByRole('button', { name: 'Alert settings' }).click();
    const settings = page.getByRole('dialog');
    await settings.getByLabel('Heartbeat tolerance (%)').fill('99999999999');
    await settings.getByRole('button', { name: 'Save settings' }).click();
    await settings.getByText('Heartbeat tolerance (%) must be at most 1000 (ten extra intervals)').waitFor();
    await settings.getByLabel('Heartbeat tolerance (%)').fill('100');
    await settings.getByLabel('Expiring-soon lead days').fill('30, 4294967296');
    await settings.getByRole('button', { name: 'Save settings' }).click();
    await settings.getByText('Expiring-soon lead days must be at most 365 days').waitFor();
    expect(await settings.textContent()).not.toMatch(/Variable|32-bit/);
    await settings.getByRole('button', { name: 'Cancel' }).click();

    await page.getByRole('button', { name: 'Default thresholds' }).click();
    const thresholds = page.getByRole('dialog');
    await thresholds.getByLabel('Percents of the cap').fill('80, 99999999999');
    await thresholds.getByRole('button', { name: 'Save thresholds' }).click();
    await thresholds.getByText('Percents of the cap must be at most 1000').waitFor();
    expect(await thresholds.textContent()).not.toMatch(/Variable|32-bit/);
    await shot(page, 'ops-04-threshold-too-large');
    expect(errors).toEqual([]);
    await context.close();
  });
});

describe('a license with more devices than one page', () => {
  it('counts all its active devices, shows the rest on asking, and releases one of those', async () => {
    const owner = <T>(query: string, input: Record<string, unknown>) => gql<T>(server.base, server.demo.apiToken, query, { input });
    const product = await owner<{ createProduct: { id: string } }>(`mutation($input: CreateProductInput!) { createProduct(input: $input) { ... on Product { id } } }`, {
      name: 'Render farm',
      code: 'render-farm',
    });
    const edition = await owner<{ createEdition: { id: string } }>(`mutation($input: CreateEditionInput!) { createEdition(input: $input) { ... on Edition { id } } }`, {
      productId: product.createProduct.id,
      name: 'Farm',
      code: 'farm',
      licenseType: 'PERPETUAL',
    });
    const created = await owner<{ createLicense: { license: { id: string; key: string } } }>(
      `mutation($input: CreateLicenseInput!) { createLicense(input: $input) { ... on CreateLicensePayload { license { id key } } } }`,
      { editionId: edition.createEdition.id, name: 'Farm nodes' },
    );
    const { id, key } = created.createLicense.license;
    // 55 nodes, one after the other: node-00 is the oldest, listed last.
    for (let i = 0; i < 55; i++) {
      const node = `node-${String(i).padStart(2, '0')}`;
      const r = await gql<{ activate: { __typename: string } }>(server.base, null, `mutation($input: ActivateInput!) { activate(input: $input) { __typename } }`, {
        input: { key, fingerprint: `farm-${node}`, client: { hostname: node } },
      });
      expect(r.activate.__typename).toBe('ActivateSuccess');
    }

    const { context, page, errors } = await signedIn();
    await page.goto(`${server.base}/licenses/${encodeURIComponent(id)}`);
    const devices = page.locator('section', { has: page.getByRole('heading', { name: 'Devices' }) });
    await devices.getByText('55 active · 55 total · first 50 shown').waitFor();
    expect(await devices.locator('tbody tr').count()).toBe(50);
    await devices.getByRole('button', { name: 'Show 5 more' }).click();
    await devices.getByText('55 active · 55 total', { exact: true }).waitFor();
    expect(await devices.locator('tbody tr').count()).toBe(55);

    // The oldest node, on the second page, is released from here; the list keeps all 55 as it is read again.
    await devices.getByRole('row', { name: /node-00/ }).getByRole('button', { name: 'Release' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Release device' }).click();
    await devices.getByText('54 active · 55 total', { exact: true }).waitFor();
    await devices.getByRole('row', { name: /node-00/ }).getByText('Released', { exact: true }).waitFor();
    expect(await devices.locator('tbody tr').count()).toBe(55);
    await shot(page, 'ops-10-devices-past-first-page');
    expect(errors).toEqual([]);
    await context.close();
  });
});

describe('an ended session', () => {
  it('goes straight to sign-in, then back to the page being opened with its query, and never off-site', async () => {
    const { context, page } = await signedIn();
    // The session cookie goes: as when the session expires or is signed out from elsewhere.
    await context.clearCookies();
    await page.locator('a.stat[href="/licenses?status=ACTIVE"]').click();
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    const at = new URL(page.url());
    expect(at.pathname).toBe('/signin');
    expect(at.searchParams.get('next')).toBe('/licenses?status=ACTIVE');
    await submitSignIn(page, server.demo.tenant, server.demo.email, server.demo.password);
    await page.getByRole('heading', { level: 1, name: 'Licenses' }).waitFor();
    expect(page.url()).toBe(`${server.base}/licenses?status=ACTIVE`);
    expect(await page.getByLabel('Status').locator('option:checked').textContent()).toMatch(/active/i);

    // Signed in, a sign-in link sends straight on: only to a path of this origin.
    for (const next of ['/\\evil.example/x', '//evil.example/x', 'https://evil.example/x']) {
      await page.goto(`${server.base}/signin?next=${encodeURIComponent(next)}`);
      await page.getByRole('heading', { level: 1, name: 'Dashboard' }).waitFor();
      expect(page.url()).toBe(`${server.base}/`);
    }
    await shot(page, 'ops-05-back-after-sign-in');
    await context.close();
  });
});

describe('an admin creating an API token', () => {
  it('is offered only the roles an admin may grant, not Owner', async () => {
    const email = 'admin-tokens@example.com';
    const password = 'admin-password-1';
    const r = await gql<{ createMember: { __typename: string } }>(server.base, server.demo.apiToken, `mutation($input: CreateMemberInput!) { createMember(input: $input) { __typename } }`, {
      input: { email, password, role: 'ADMIN' },
    });
    expect(r.createMember.__typename).toBe('Member');
    const { context, page, errors } = await signedIn({ email, password });
    await page.goto(`${server.base}/settings/tokens`);
    await page.getByRole('button', { name: 'New token' }).click();
    const dialog = page.getByRole('dialog');
    expect(await dialog.getByLabel('Role').locator('option').allTextContents()).toEqual(['Admin', 'Support', 'Read-only']);
    await dialog.getByLabel('Name').fill('CI deploys');
    await dialog.getByLabel('Role').selectOption('ADMIN');
    await dialog.getByRole('button', { name: 'Create token' }).click();
    await page.getByRole('cell', { name: 'CI deploys' }).waitFor();
    await shot(page, 'ops-06-admin-token-roles');
    expect(errors).toEqual([]);
    await context.close();
  });
});

describe('a customer with more licenses than one page', () => {
  let customerId = '';

  beforeAll(async () => {
    const c = await gql<{ createCustomer: { id: string } }>(server.base, server.demo.apiToken, `mutation { createCustomer(input: { name: "Large Account" }) { ... on Customer { id } } }`);
    customerId = c.createCustomer.id;
    const { products } = await gql<{ products: { editions: { id: string; deploymentMode: string }[] }[] }>(server.base, server.demo.apiToken, `{ products { editions { id deploymentMode } } }`);
    const editionId = products.flatMap((p) => p.editions).find((e) => e.deploymentMode === 'ONLINE')!.id;
    for (let batch = 0; batch < 9; batch++) {
      const fields = Array.from({ length: 15 }, (_, i) => {
        const n = String(batch * 15 + i).padStart(3, '0');
        return `l${n}: createLicense(input: { editionId: "${editionId}", customerId: "${customerId}", name: "Seat ${n}" }) { __typename }`;
      });
      await gql(server.base, server.demo.apiToken, `mutation { ${fields.join('\n')} }`);
    }
  });

  it('pages through all 135 of its licenses on its page', async () => {
    const { context, page, errors } = await signedIn();
    await page.goto(`${server.base}/customers/${encodeURIComponent(customerId)}`);
    await page.getByRole('heading', { level: 1, name: 'Large Account' }).waitFor();
    await page.getByText('135 licenses · 135 active').waitFor();
    const seen = new Set<string>();
    const rows = page.locator('tbody tr td:first-child .subtle');
    for (;;) {
      await page.getByText(/^Showing \d+ of 135$/).waitFor();
      for (const name of await rows.allTextContents()) seen.add(name);
      const next = page.getByRole('button', { name: 'Next' });
      if (await next.isDisabled()) break;
      const before = page.url();
      await next.click();
      await page.waitForURL((u) => u.href !== before);
    }
    expect(seen.size).toBe(135);
    await page.getByRole('button', { name: 'Previous' }).click();
    await page.getByText(/^Showing 50 of 135$/).waitFor();

    await page.getByRole('link', { name: 'Open in the licenses list' }).click();
    await page.getByText('135 licenses match these filters').waitFor();
    await shot(page, 'ops-07-customer-licenses-paged');
    expect(errors).toEqual([]);
    await context.close();
  });
});
