import { readFileSync } from 'node:fs';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launch, shot, signInDemo, watchErrors } from './browser';
import { gql, startServer, type RunningServer } from './server';

// The audit page's filters, and the export that must hold what the page lists, as an auditor downloads it.

let server: RunningServer;
let browser: Browser;
let context: BrowserContext;
let page: Page;
let errors: string[];

beforeAll(async () => {
  server = await startServer();
  browser = await launch();
  context = await browser.newContext({ viewport: { width: 1360, height: 860 }, acceptDownloads: true });
  page = await context.newPage();
  page.setDefaultTimeout(15_000);
  errors = watchErrors(page);
  await signInDemo(page, server.base, server.demo);
});

afterAll(async () => {
  await browser?.close();
  await server?.stop();
});

interface Exported {
  id: string;
  type: string;
  licenseId: string | null;
}

/** Clicks the page's export link and reads the file the browser saves. */
async function download(name: 'Export CSV' | 'Export JSON'): Promise<{ href: string; rows: Exported[] }> {
  const link = page.getByRole('link', { name });
  const href = (await link.getAttribute('href')) ?? '';
  const [file] = await Promise.all([page.waitForEvent('download'), link.click()]);
  const text = readFileSync((await file.path())!, 'utf8');
  if (name === 'Export JSON') return { href, rows: text.trim() ? text.trim().split('\n').map((l) => JSON.parse(l) as Exported) : [] };
  const [header, ...lines] = text.trimEnd().split('\r\n');
  const columns = header!.split(',');
  // The test rows hold no quoted commas before the licenseId column.
  const rows = lines.map((l) => {
    const cells = l.split(',');
    return { id: cells[columns.indexOf('id')]!, type: cells[columns.indexOf('type')]!, licenseId: cells[columns.indexOf('licenseId')] || null };
  });
  return { href, rows };
}

/** The types the audit page lists now. */
async function listedTypes(): Promise<string[]> {
  return page.locator('table tbody tr td:nth-child(2) .mono').allTextContents();
}

describe('audit log filters and export', () => {
  it('offers each domain as a pattern, and lists only that domain for license.*', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Audit log', exact: true }).click();
    await page.getByRole('heading', { level: 1, name: 'Audit log' }).waitFor();
    const offered = await page.locator('#audit-types option').evaluateAll((os) => os.map((o) => (o as HTMLOptionElement).value));
    expect(offered).toEqual(expect.arrayContaining(['license.*', 'compliance.*', 'member.*', 'license.created']));
    // The whole log holds more than the license domain (the demo's tenant, members, catalog...).
    const all = await gql<{ auditEvents: { edges: { node: { type: string } }[] } }>(server.base, server.demo.apiToken, `{ auditEvents(first: 100) { edges { node { type } } } }`);
    expect(all.auditEvents.edges.some((e) => !e.node.type.startsWith('license.'))).toBe(true);

    await page.getByLabel('Event type').fill('license.*');
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.waitForURL((url) => url.searchParams.get('type') === 'license.*');
    await page.locator('table tbody tr').first().waitFor();
    const types = await listedTypes();
    expect(types.length).toBeGreaterThan(0);
    expect(types.every((t) => t.startsWith('license.'))).toBe(true);
    await shot(page, 'audit-01-license-domain');
  });

  it('exports what the page shows: the type filter, a pattern too, in CSV and JSON', async () => {
    const expected = await gql<{ auditEvents: { edges: { node: { id: string } }[] } }>(
      server.base,
      server.demo.apiToken,
      `{ auditEvents(first: 100, type: "license.*") { edges { node { id } } } }`,
    );
    const ids = expected.auditEvents.edges.map((e) => e.node.id).sort();
    for (const format of ['Export CSV', 'Export JSON'] as const) {
      const { href, rows } = await download(format);
      expect(new URL(href, server.base).searchParams.get('type'), format).toBe('license.*');
      expect(rows.length, format).toBeGreaterThan(0);
      expect(rows.every((r) => r.type.startsWith('license.')), format).toBe(true);
      expect(rows.map((r) => r.id).sort(), format).toEqual(ids);
    }
  });

  it("exports one license's history, with its type filter, from the license page's Full history link", async () => {
    const { licenses } = await gql<{ licenses: { edges: { node: { id: string; key: string } }[] } }>(server.base, server.demo.apiToken, `{ licenses(first: 1) { edges { node { id key } } } }`);
    const license = licenses.edges[0]!.node;
    await page.goto(`${server.base}/licenses/${encodeURIComponent(license.id)}`);
    await page.getByRole('heading', { level: 1, name: license.key }).waitFor();
    await page.getByRole('link', { name: 'Full history' }).click();
    await page.getByRole('heading', { level: 1, name: 'Audit log' }).waitFor();
    await page.getByText('One license').waitFor();
    // The audit log holds raw ids; the console's links, global ones.
    const rawLicenseId = Buffer.from(license.id, 'base64').toString('utf8').split(':')[1];
    const whole = await download('Export JSON');
    expect(whole.rows.length).toBeGreaterThan(0);
    expect(whole.rows.every((r) => r.licenseId === rawLicenseId)).toBe(true);

    await page.getByLabel('Event type').fill('license.created');
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.waitForURL((url) => url.searchParams.get('type') === 'license.created' && url.searchParams.has('license'));
    await page.locator('table tbody tr').first().waitFor();
    expect(await listedTypes()).toEqual(['license.created']);
    const { rows } = await download('Export CSV');
    expect(rows.map((r) => [r.type, r.licenseId])).toEqual([['license.created', rawLicenseId]]);
  });

  it('says what is wrong with a malformed pattern, and offers no export of it', async () => {
    await page.getByLabel('Event type').fill('lic*ense');
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.getByRole('alert').filter({ hasText: /not a valid pattern.*license\.\*/ }).waitFor();
    expect(await page.getByRole('heading', { level: 1, name: 'Audit log' }).count()).toBe(1);
    expect(await page.getByRole('link', { name: 'Export CSV' }).count()).toBe(0);
    expect(await page.getByLabel('Event type').inputValue()).toBe('lic*ense');
    await shot(page, 'audit-02-bad-pattern');
  });

  it('ran without console errors', () => {
    expect(errors).toEqual([]);
  });
});
