import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launch, shot, signInDemo, watchErrors } from './browser';
import { gql, startServer, type RunningServer } from './server';

// Detail pages opened by an address that names nothing (a typo, a link cut short, a deleted object),
// a license's activation progress once devices use its goodwill, and its token keys on a phone.

let server: RunningServer;
let browser: Browser;
let context: BrowserContext;
let page: Page;
let errors: string[];
const stamp = Date.now().toString(36);

const UNKNOWN = '9ab89285-ca57-47ac-a204-dc5693926afe';
let productId = '';
let editionId = '';
let customerId = '';

type Payload = { __typename: string; id?: string; code?: string; goodwill?: boolean };

const owner = <T = Record<string, any>>(query: string, variables: Record<string, unknown> = {}) => gql<T>(server.base, server.demo.apiToken, query, variables);

async function issue(input: Record<string, unknown>): Promise<{ id: string; key: string; tokenKeys: string[] }> {
  const r = await owner(`mutation($input: CreateLicenseInput!) { createLicense(input: $input) { __typename ... on CreateLicensePayload { license { id key } tokenKeys } } }`, {
    input: { editionId, ...input },
  });
  expect(r.createLicense.__typename).toBe('CreateLicensePayload');
  return { ...r.createLicense.license, tokenKeys: r.createLicense.tokenKeys };
}

async function activate(key: string, fingerprint: string, client?: Record<string, string>): Promise<Payload> {
  const r = await gql<{ activate: Payload }>(server.base, null, `mutation($input: ActivateInput!) { activate(input: $input) { __typename ... on ActivateSuccess { goodwill } ... on LicensingError { code } } }`, {
    input: { key, fingerprint, client },
  });
  return r.activate;
}

beforeAll(async () => {
  server = await startServer();
  browser = await launch();
  const product = await owner(`mutation($input: CreateProductInput!) { createProduct(input: $input) { __typename ... on Product { id } } }`, {
    input: { name: `Detail ${stamp}`, code: `detail-${stamp}` },
  });
  productId = product.createProduct.id;
  const edition = await owner(`mutation($input: CreateEditionInput!) { createEdition(input: $input) { __typename ... on Edition { id } } }`, {
    input: { productId, name: 'Team', code: `team-${stamp}`, licenseType: 'PERPETUAL', maxActivations: 2, goodwillActivations: 1 },
  });
  expect(edition.createEdition.__typename).toBe('Edition');
  editionId = edition.createEdition.id;
  const customer = await owner(`mutation($input: CreateCustomerInput!) { createCustomer(input: $input) { __typename ... on Customer { id } } }`, { input: { name: `Detail Co ${stamp}` } });
  customerId = customer.createCustomer.id;

  context = await browser.newContext({ viewport: { width: 1360, height: 860 }, locale: 'en-US' });
  page = await context.newPage();
  page.setDefaultTimeout(15_000);
  errors = watchErrors(page);
  await signInDemo(page, server.base, server.demo);
});

afterAll(async () => {
  await browser?.close();
  await server?.stop();
});

const global = (type: string, id: string) => btoa(`${type}:${id}`);

describe('a detail page whose address names nothing', () => {
  it('says what was not found and links back to its list, whatever is wrong with the id', async () => {
    const cases: [string, string, string][] = [
      // Malformed: not an id at all, a raw uuid cut short, a global id of an unknown type, a uuid cut short inside one.
      ['/licenses/garbage', 'License not found', '/licenses'],
      [`/licenses/${UNKNOWN.slice(0, 20)}`, 'License not found', '/licenses'],
      [`/licenses/${encodeURIComponent(global('Foo', UNKNOWN))}`, 'License not found', '/licenses'],
      [`/licenses/${encodeURIComponent(global('License', UNKNOWN.slice(0, 20)))}`, 'License not found', '/licenses'],
      // Well-formed, but nothing of this tenant: unknown, and another kind of object's id.
      [`/licenses/${encodeURIComponent(global('License', UNKNOWN))}`, 'License not found', '/licenses'],
      [`/licenses/${encodeURIComponent(customerId)}`, 'License not found', '/licenses'],
      ['/customers/garbage', 'Customer not found', '/customers'],
      [`/customers/${encodeURIComponent(global('Customer', UNKNOWN))}`, 'Customer not found', '/customers'],
      ['/catalog/garbage', 'Product not found', '/catalog'],
      [`/catalog/${encodeURIComponent(global('Product', UNKNOWN))}`, 'Product not found', '/catalog'],
      ['/catalog/garbage/editions/garbage', 'Product not found', '/catalog'],
      ['/catalog/garbage/editions/new', 'Product not found', '/catalog'],
      [`/catalog/${encodeURIComponent(productId)}/editions/garbage`, 'Edition not found', `/catalog/${encodeURIComponent(productId)}`],
      ['/settings/webhooks/garbage', 'Webhook endpoint not found', '/settings/webhooks'],
      [`/settings/webhooks/${encodeURIComponent(global('WebhookEndpoint', UNKNOWN))}`, 'Webhook endpoint not found', '/settings/webhooks'],
    ];
    for (const [path, title, list] of cases) {
      await page.goto(`${server.base}${path}`);
      await page.getByRole('heading', { level: 1, name: title }).waitFor();
      const back = page.getByRole('link', { name: /^Back to / });
      expect(new URL((await back.getAttribute('href'))!, server.base).pathname, path).toBe(list);
      expect(await page.getByRole('button', { name: 'Try again' }).count(), path).toBe(0);
    }
    await shot(page, 'detail-01-license-not-found');
    await page.getByRole('link', { name: /^Back to / }).click();
    await page.getByRole('heading', { level: 1, name: 'Webhooks' }).waitFor();
  });

  it('opens a license by its raw id too, as the audit log export has it', async () => {
    const license = await issue({});
    const raw = atob(license.id).split(':')[1]!;
    await page.goto(`${server.base}/licenses/${raw}`);
    await page.getByRole('heading', { level: 1, name: license.key }).waitFor();
  });

  it('still shows an error, with Try again, when the server fails to answer', async () => {
    const api = (u: URL) => u.pathname === '/graphql';
    const before = errors.length;
    await page.route(api, (route) => {
      const request = route.request();
      const operation = new URL(request.url()).searchParams.get('operationName') ?? (request.postDataJSON() as { operationName?: string } | null)?.operationName;
      return operation === 'License' ? route.abort('connectionreset') : route.continue();
    });
    await page.goto(`${server.base}/licenses/${encodeURIComponent(global('License', UNKNOWN))}`);
    await page.getByRole('heading', { level: 1, name: 'Something went wrong' }).waitFor();
    await page.getByRole('button', { name: 'Try again' }).waitFor();
    await page.unroute(api);
    // The failed request is reported on the browser's console: expected here.
    errors.splice(before);
  });
});

describe("a license's activation progress", () => {
  it('says when goodwill activations are in use', async () => {
    const license = await issue({});
    const url = `${server.base}/licenses/${encodeURIComponent(license.id)}`;
    const progress = page.getByTestId('activation-progress');
    const caption = page.getByTestId('activation-caption');
    await page.goto(url);
    await page.getByRole('heading', { level: 1, name: license.key }).waitFor();
    await progress.filter({ hasText: /^0 \/ 2$/ }).waitFor();
    expect(await caption.innerText()).toBe('2 left · 1 goodwill activation beyond the cap');

    for (const fp of ['gw-1', 'gw-2']) expect(await activate(license.key, `${fp}-${stamp}`)).toEqual({ __typename: 'ActivateSuccess', goodwill: false });
    await progress.filter({ hasText: /^2 \/ 2$/ }).waitFor();
    expect(await caption.innerText()).toBe('None left · 1 goodwill activation available');

    expect(await activate(license.key, `gw-3-${stamp}`)).toEqual({ __typename: 'ActivateSuccess', goodwill: true });
    await progress.filter({ hasText: /^3 \/ 2$/ }).waitFor();
    expect(await caption.innerText()).toBe('1 goodwill activation in use · none left');
    await shot(page, 'detail-02-goodwill-in-use');
  });
});

describe('token keys on a phone', () => {
  it('fit the card at 390 px, each key on one line, with its state and copy button in view', async () => {
    const license = await issue({ tokenCount: 3 });
    expect(await activate(license.tokenKeys[0]!, `token-${stamp}`)).toMatchObject({ __typename: 'ActivateSuccess' });
    const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, locale: 'en-US', storageState: await context.storageState() });
    // The key was used 50 minutes before the phone's clock: "Used 50 minutes ago", the longest state it shows.
    await phone.clock.install({ time: Date.now() + 50 * 60_000 });
    const p = await phone.newPage();
    p.setDefaultTimeout(15_000);
    const phoneErrors = watchErrors(p);
    await p.goto(`${server.base}/licenses/${encodeURIComponent(license.id)}`);
    const card = p.locator('section', { has: p.getByRole('heading', { name: 'Token keys' }) });
    await card.getByText('Used 50 minutes ago').waitFor();
    expect(await p.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    const box = (await card.boundingBox())!;
    // Nothing inside the card scrolls sideways or reaches past its edges.
    expect(await card.evaluate((el) => [...el.querySelectorAll('*')].filter((e) => e.scrollWidth > e.clientWidth + 1 && getComputedStyle(e).overflowX !== 'visible').length)).toBe(0);
    const parts = card.locator('code, .badge, button');
    expect(await parts.count()).toBe(3 + 3 + 2);
    for (const part of await parts.all()) {
      const b = (await part.boundingBox())!;
      expect(b.x).toBeGreaterThanOrEqual(box.x);
      expect(b.x + b.width).toBeLessThanOrEqual(box.x + box.width);
    }
    // A key is read and typed as one piece: it does not break across lines.
    for (const key of await card.locator('code').all()) expect(await key.evaluate((el) => el.getClientRects().length)).toBe(1);
    await shot(p, 'detail-03-token-keys-390');
    expect(phoneErrors).toEqual([]);
    await phone.close();
  });
});

describe("a license's devices on a phone", () => {
  it('fit the card at 390 px with every field and the Release button in view, and no card heading wraps', async () => {
    const license = await issue({ tokenCount: 3 });
    // Long but ordinary values: a fully qualified host name, a 64-hex fingerprint, a Windows build, a pre-release version.
    for (const [i, key] of license.tokenKeys.slice(0, 2).entries()) {
      const client = { hostname: `build-agent-0${i + 1}.eu-west.example.internal`, platform: 'windows', osVersion: '10.0.22631', appVersion: '12.4.0-beta.3' };
      expect(await activate(key, `${'f'.repeat(60)}${stamp.slice(0, 2)}0${i}`, client)).toMatchObject({ __typename: 'ActivateSuccess' });
    }
    const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, locale: 'en-US', storageState: await context.storageState() });
    const p = await phone.newPage();
    p.setDefaultTimeout(15_000);
    const phoneErrors = watchErrors(p);
    await p.goto(`${server.base}/licenses/${encodeURIComponent(license.id)}`);
    const card = p.locator('section', { has: p.getByRole('heading', { name: 'Devices' }) });
    await card.getByText('build-agent-02.eu-west.example.internal').waitFor();
    expect(await p.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    // Nothing inside the card scrolls sideways, and every value and button lies within it.
    const scrolling = await card.evaluate((el) =>
      [...el.querySelectorAll('*')]
        // (A visually hidden element, 1 px wide for screen readers only, shows nothing to scroll.)
        .filter((e) => e.clientWidth > 1 && e.scrollWidth > e.clientWidth + 1 && getComputedStyle(e).overflowX !== 'visible')
        .map((e) => `${e.tagName.toLowerCase()}.${e.className} ${e.scrollWidth} > ${e.clientWidth}`),
    );
    expect(scrolling).toEqual([]);
    const box = (await card.boundingBox())!;
    const parts = card.locator('td > *, td:not(:empty), button');
    expect(await card.getByRole('button', { name: 'Release' }).count()).toBe(2);
    for (const part of await parts.all()) {
      const b = (await part.boundingBox())!;
      expect(b.x, await part.innerText()).toBeGreaterThanOrEqual(box.x);
      expect(b.x + b.width, await part.innerText()).toBeLessThanOrEqual(box.x + box.width);
    }
    // Each value still says which column it is, to the eye and to a screen reader.
    await card.getByText('Fingerprint', { exact: true }).first().waitFor();
    expect(await card.getByRole('cell', { name: 'windows 10.0.22631' }).count()).toBe(2);
    // A card's heading is one line: its caption goes below it rather than squeezing it.
    const headings = p.locator('section.card h2');
    expect(await headings.allInnerTexts()).toEqual(expect.arrayContaining(['Devices', 'Token keys']));
    for (const h of await headings.all()) {
      const lines = await h.evaluate((el) => {
        const range = document.createRange();
        range.selectNodeContents(el);
        return new Set([...range.getClientRects()].map((r) => Math.round(r.top))).size;
      });
      expect(lines, await h.innerText()).toBe(1);
    }
    await shot(p, 'detail-04-devices-390');
    expect(phoneErrors).toEqual([]);
    await phone.close();
  });
});

describe('the console', () => {
  it('ran without console errors', () => {
    expect(errors).toEqual([]);
  });
});
