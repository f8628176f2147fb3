import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launch, shot, submitSignIn, watchErrors } from './browser';
import { gql, startServer, type RunningServer } from './server';

/** Editing and deleting the catalogue in the console, against the real server. */

let server: RunningServer;
let browser: Browser;
let page: Page;
let errors: string[];

const stamp = Date.now().toString(36);
let productId = '';
let productUrl = '';
let editionId = '';
let licenseId = '';
let licenseKey = '';

type Payload = { __typename: string; id?: string; message?: string };

async function api<T = Record<string, Payload>>(query: string, input: Record<string, unknown>): Promise<T> {
  return gql<T>(server.base, server.demo.apiToken, query, { input });
}

beforeAll(async () => {
  server = await startServer();
  browser = await launch();
  page = await (await browser.newContext({ viewport: { width: 1360, height: 860 } })).newPage();
  page.setDefaultTimeout(15_000);
  errors = watchErrors(page);

  // A product with a feature an edition (and its license) uses, one nobody uses, and a meter.
  const product = await api(`mutation($input: CreateProductInput!) { createProduct(input: $input) { __typename ... on Product { id } } }`, {
    name: `Catalog ${stamp}`,
    code: `catalog-${stamp}`,
  });
  productId = product.createProduct!.id!;
  for (const [code, name] of [
    ['export', 'PDF export'],
    ['legacy-flag', 'Legacy flag'],
  ]) {
    await api(`mutation($input: CreateFeatureInput!) { createFeature(input: $input) { __typename } }`, { productId, code, name });
  }
  const edition = await api(`mutation($input: CreateEditionInput!) { createEdition(input: $input) { __typename ... on Edition { id } } }`, {
    productId,
    name: 'Pro',
    code: 'pro',
    licenseType: 'SUBSCRIPTION',
    validityDays: 365,
    maxActivations: 3,
    features: ['export'],
  });
  editionId = edition.createEdition!.id!;
  const license = await gql<{ createLicense: { license: { id: string; key: string } } }>(
    server.base,
    server.demo.apiToken,
    `mutation($input: CreateLicenseInput!) { createLicense(input: $input) { ... on CreateLicensePayload { license { id key } } } }`,
    { input: { editionId } },
  );
  licenseId = license.createLicense.license.id;
  licenseKey = license.createLicense.license.key;
  productUrl = `${server.base}/catalog/${encodeURIComponent(productId)}`;
});

afterAll(async () => {
  await browser?.close();
  await server?.stop();
});

const features = () => page.locator('section', { has: page.getByRole('heading', { name: 'Features' }) });
/** The features card's code cell of a feature. */
const featureCell = (code: string) => features().locator('code', { hasText: new RegExp(`^${code}$`) });
const featureRow = (code: string) => features().getByRole('row', { name: new RegExp(`\\b${code}\\b`) });
const editionRow = (name: string) => page.getByRole('row', { name: new RegExp(name) });

async function signIn(email: string, password: string) {
  await page.goto(`${server.base}/`);
  await page.waitForURL(/\/signin/);
  await submitSignIn(page, server.demo.tenant, email, password);
  await page.getByRole('heading', { level: 1, name: 'Dashboard' }).waitFor();
}

describe('catalog editing in the console', () => {
  it('edits an edition; the license issued before keeps its terms', async () => {
    await signIn(server.demo.email, server.demo.password);
    await page.goto(productUrl);
    await page.getByRole('heading', { level: 1, name: `Catalog ${stamp}` }).waitFor();
    await editionRow('Pro').getByRole('link', { name: 'Edit' }).click();
    await page.getByRole('heading', { level: 1, name: 'Edit edition' }).waitFor();
    await page.getByText('these changes apply only to licenses issued after you save').waitFor();

    await page.getByLabel('Name', { exact: true }).fill('Professional');
    await page.getByLabel('Max activations').fill('5');
    // The same rules as creating: seats on a NAMED edition are refused before anything is sent.
    await page.getByLabel('Seats').fill('4');
    await page.getByRole('button', { name: 'Save edition' }).click();
    await page.getByText('seats apply to FLOATING provisioning only', { exact: false }).waitFor();
    await page.getByLabel('Seats').fill('');
    await shot(page, 'catalog-01-edit-edition');
    await page.getByRole('button', { name: 'Save edition' }).click();

    await page.getByRole('heading', { level: 1, name: `Catalog ${stamp}` }).waitFor();
    await editionRow('Professional').getByRole('cell', { name: '5 devices' }).waitFor();
    const after = await gql<{ edition: { maxActivations: number; name: string }; license: { maxActivations: number } }>(
      server.base,
      server.demo.apiToken,
      `query($e: ID!, $l: ID!) { edition: node(id: $e) { ... on Edition { name maxActivations } } license: node(id: $l) { ... on License { maxActivations } } }`,
      { e: editionId, l: licenseId },
    );
    expect(after.edition).toEqual({ name: 'Professional', maxActivations: 5 });
    expect(after.license.maxActivations).toBe(3);
  });

  it('edits a feature in a dialog that starts from its values', async () => {
    await featureRow('export').getByRole('button', { name: 'Edit' }).click();
    const dialog = page.getByRole('dialog');
    expect(await dialog.getByLabel('Name').inputValue()).toBe('PDF export');
    await dialog.getByLabel('Name').fill('');
    await dialog.getByRole('button', { name: 'Save feature' }).click();
    await dialog.getByText('Name is required').waitFor();
    await dialog.getByLabel('Name').fill('PDF and SVG export');
    await dialog.getByLabel('Description').fill('Vector and print output');
    await dialog.getByRole('button', { name: 'Save feature' }).click();
    await page.getByText('Feature “PDF and SVG export” saved.').waitFor();
    await featureRow('export').getByText('Vector and print output').waitFor();
  });

  it('deletes an unused feature after confirming', async () => {
    await featureRow('legacy-flag').getByRole('button', { name: 'Delete' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByText('is removed from the catalog').waitFor();
    await dialog.getByRole('button', { name: 'Delete feature' }).click();
    await page.getByText('Feature “Legacy flag” deleted.').waitFor();
    await featureCell('legacy-flag').waitFor({ state: 'detached' });
    await featureCell('export').waitFor();
  });

  it('shows the refusal for a feature in use and keeps it', async () => {
    await featureRow('export').getByRole('button', { name: 'Delete' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByRole('button', { name: 'Delete feature' }).click();
    await dialog.getByText('feature "export" is still used by 1 edition (pro) and 1 license').waitFor();
    await shot(page, 'catalog-02-feature-in-use');
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await featureCell('export').waitFor();
  });

  it('does not offer to delete an edition that issued a license, says why, and archives it instead', async () => {
    const remove = editionRow('Professional').getByRole('button', { name: 'Delete' });
    expect(await remove.isDisabled()).toBe(true);
    // The reason is in the row, and is the button's description for a screen reader.
    const reason = editionRow('Professional').getByText('1 license was issued from it, so it cannot be deleted: archive it to stop new licenses.');
    await reason.waitFor();
    expect(await remove.getAttribute('aria-describedby')).toContain(await reason.getAttribute('id'));
    await shot(page, 'catalog-02b-edition-not-deletable');

    await editionRow('Professional').getByRole('button', { name: 'Archive' }).click();
    await page.getByText('no new licenses can be issued from it').waitFor();
    const row = editionRow('Professional');
    await row.getByText('Archived').waitFor();
    await row.getByText('1 license was issued from it, so it cannot be deleted.', { exact: true }).waitFor();
    expect(await row.getByRole('button', { name: 'Delete' }).isDisabled()).toBe(true);
    expect(await row.getByRole('link', { name: 'Issue license' }).count()).toBe(0);
    await page.getByRole('button', { name: 'Hide archived' }).click();
    expect(await editionRow('Professional').count()).toBe(0);
    await page.getByRole('button', { name: 'Show archived (1)' }).click();
    await editionRow('Professional').getByRole('button', { name: 'Unarchive' }).click();
    await page.getByText('is current again').waitFor();
    await editionRow('Professional').getByRole('link', { name: 'Issue license' }).waitFor();
  });

  it("shows the server's refusal when a license is issued from an edition while its delete is being confirmed, then offers it no more", async () => {
    // On a product of its own, so that the license it issues is not counted against the product tested below.
    const other = await api(`mutation($input: CreateProductInput!) { createProduct(input: $input) { __typename ... on Product { id } } }`, {
      name: `Editions ${stamp}`,
      code: `editions-${stamp}`,
    });
    const basic = await api(`mutation($input: CreateEditionInput!) { createEdition(input: $input) { __typename ... on Edition { id } } }`, {
      productId: other.createProduct!.id,
      name: 'Basic',
      code: 'basic',
      licenseType: 'PERPETUAL',
    });
    await page.goto(`${server.base}/catalog/${encodeURIComponent(other.createProduct!.id!)}`);
    await page.getByRole('heading', { level: 1, name: `Editions ${stamp}` }).waitFor();
    await editionRow('Basic').getByRole('button', { name: 'Delete' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByText('is deleted').waitFor();
    // Meanwhile, someone else issues a license from it.
    const issued = await api(`mutation($input: CreateLicenseInput!) { createLicense(input: $input) { __typename } }`, { editionId: basic.createEdition!.id });
    expect(issued.createLicense!.__typename).toBe('CreateLicensePayload');
    await dialog.getByRole('button', { name: 'Delete edition' }).click();
    await dialog.getByText('1 license was issued from this edition; archive it instead').waitFor();
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await editionRow('Basic').getByText('1 license was issued from it, so it cannot be deleted').waitFor();
    expect(await editionRow('Basic').getByRole('button', { name: 'Delete' }).isDisabled()).toBe(true);
  });

  it('deletes an edition that issued no licenses', async () => {
    await api(`mutation($input: CreateEditionInput!) { createEdition(input: $input) { __typename } }`, { productId, name: 'Unused', code: 'unused', licenseType: 'PERPETUAL' });
    await page.goto(productUrl);
    await page.getByRole('heading', { level: 1, name: `Catalog ${stamp}` }).waitFor();
    await editionRow('Unused').getByRole('button', { name: 'Delete' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Delete edition' }).click();
    await page.getByText('Edition “Unused” deleted.').waitFor();
    await editionRow('Unused').waitFor({ state: 'detached' });
  });

  it('shows the devices in use by app version, platform and OS version', async () => {
    await page.goto(productUrl);
    const card = page.locator('section', { has: page.getByRole('heading', { name: 'Devices in use' }) });
    await card.getByText('No device heard from in this period').waitFor();
    // Three devices report through the client API (no console involved).
    for (const [fingerprint, appVersion, platform, osVersion] of [
      ['e2e-dev-1', '2.1.0', 'linux', '6.8'],
      ['e2e-dev-2', '2.1.0', 'windows', '11'],
      ['e2e-dev-3', '2.0.4', 'linux', '6.8'],
    ]) {
      const r = await gql<{ activate: Payload }>(server.base, null, `mutation($input: ActivateInput!) { activate(input: $input) { __typename } }`, {
        input: { key: licenseKey, fingerprint, client: { appVersion, platform, osVersion } },
      });
      expect(r.activate.__typename).toBe('ActivateSuccess');
    }
    await page.reload();
    await card.getByTestId('device-insights-summary').getByText('3 active devices heard from in the last 30 days').waitFor();
    const rows = async (id: string) =>
      (await card.getByTestId(`device-insights-${id}`).locator('tbody tr').allInnerTexts()).map((t) => t.split(/\s+/).join(' ').trim());
    expect(await rows('app')).toEqual(['2.1.0 2 67%', '2.0.4 1 33%']);
    expect(await rows('platform')).toEqual(['linux 2 67%', 'windows 1 33%']);
    expect(await rows('os')).toEqual(['6.8 2 67%', '11 1 33%']);
    await card.getByLabel('Heard from in').selectOption('7');
    await card.getByTestId('device-insights-summary').getByText('3 active devices heard from in the last 7 days').waitFor();
    await shot(page, 'catalog-03-devices-in-use');
  });

  it('does not offer to delete a product that issued licenses, and says why', async () => {
    await page.goto(productUrl);
    await page.getByRole('heading', { level: 1, name: `Catalog ${stamp}` }).waitFor();
    const remove = page.getByRole('button', { name: 'Delete product' });
    expect(await remove.isDisabled()).toBe(true);
    // The reason is on the page, and is the button's description for a screen reader.
    const reason = page.getByText('1 license was issued for this product, so it cannot be deleted');
    await reason.waitFor();
    expect(await remove.getAttribute('aria-describedby')).toBe(await reason.getAttribute('id'));
    await shot(page, 'catalog-04-product-not-deletable');
  });

  it("shows the server's refusal when a license is issued while the delete is being confirmed, then offers it no more", async () => {
    const other = await api(`mutation($input: CreateProductInput!) { createProduct(input: $input) { __typename ... on Product { id } } }`, {
      name: `Short-lived ${stamp}`,
      code: `short-lived-${stamp}`,
    });
    const otherId = other.createProduct!.id!;
    const otherEdition = await api(`mutation($input: CreateEditionInput!) { createEdition(input: $input) { __typename ... on Edition { id } } }`, {
      productId: otherId,
      name: 'Basic',
      code: 'basic',
      licenseType: 'PERPETUAL',
    });
    await page.goto(`${server.base}/catalog/${encodeURIComponent(otherId)}`);
    await page.getByRole('heading', { level: 1, name: `Short-lived ${stamp}` }).waitFor();
    await page.getByRole('button', { name: 'Delete product' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByText('cannot be undone').waitFor();
    // Meanwhile, someone else issues a license from it.
    const issued = await api(`mutation($input: CreateLicenseInput!) { createLicense(input: $input) { __typename } }`, { editionId: otherEdition.createEdition!.id });
    expect(issued.createLicense!.__typename).toBe('CreateLicensePayload');
    await dialog.getByRole('button', { name: 'Delete product' }).click();
    await dialog.getByText('1 license was issued for this product; it cannot be deleted').waitFor();
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await page.getByText('1 license was issued for this product, so it cannot be deleted').waitFor();
    expect(await page.getByRole('button', { name: 'Delete product' }).isDisabled()).toBe(true);
  });

  it('deletes a product that issued no licenses, with its editions', async () => {
    const spare = await api(`mutation($input: CreateProductInput!) { createProduct(input: $input) { __typename ... on Product { id } } }`, {
      name: `Spare ${stamp}`,
      code: `spare-${stamp}`,
    });
    const spareId = spare.createProduct!.id!;
    await api(`mutation($input: CreateEditionInput!) { createEdition(input: $input) { __typename } }`, { productId: spareId, name: 'Lite', code: 'lite', licenseType: 'PERPETUAL' });
    await page.goto(`${server.base}/catalog/${encodeURIComponent(spareId)}`);
    await page.getByRole('heading', { level: 1, name: `Spare ${stamp}` }).waitFor();
    await page.getByRole('button', { name: 'Delete product' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Delete product' }).click();
    await page.getByRole('heading', { level: 1, name: 'Catalog' }).waitFor();
    expect(await page.getByText(`Spare ${stamp}`).count()).toBe(0);
  });

  it('a SUPPORT member sees the catalog without edit or delete actions', async () => {
    const email = `support-${stamp}@example.test`;
    const password = 'support-password-1';
    const r = await gql<{ createMember: Payload }>(server.base, server.demo.apiToken, `mutation($input: CreateMemberInput!) { createMember(input: $input) { __typename } }`, {
      input: { email, password, role: 'SUPPORT' },
    });
    expect(r.createMember.__typename).toBe('Member');
    await page.context().clearCookies();
    await signIn(email, password);
    await page.goto(productUrl);
    await page.getByRole('heading', { level: 1, name: `Catalog ${stamp}` }).waitFor();
    await featureCell('export').waitFor();
    await editionRow('Professional').waitFor();
    for (const name of ['Edit product', 'Delete product', 'Edit', 'Delete', 'Archive']) {
      expect(await page.getByRole('button', { name, exact: true }).or(page.getByRole('link', { name, exact: true })).count(), name).toBe(0);
    }
  });

  it('ran without console errors', () => {
    expect(errors).toEqual([]);
  });
});
