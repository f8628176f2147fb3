import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launch, shot, submitSignIn, watchErrors } from './browser';
import { gql, startServer, type RunningServer } from './server';

/**
 * The license import page with malformed files: each is refused with a message that names the line and
 * the field (or says what to change about the file), never zod's own words, and nothing is imported.
 */

let server: RunningServer;
let browser: Browser;
let page: Page;
let errors: string[];
const dir = mkdtempSync(path.join(tmpdir(), 'tessera-import-e2e-'));
/** The importLicenses requests the page sent. */
const sent: string[] = [];

/** What zod says by itself ("Invalid option: expected one of …", "Unrecognized key: …"): never on the page. */
const RAW_ZOD = /Invalid input|Invalid option|Unrecognized key|Too (big|small)|expected \w+, received/;

beforeAll(async () => {
  server = await startServer();
  browser = await launch();
  page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
  page.setDefaultTimeout(20_000);
  errors = watchErrors(page);
  page.on('request', (r) => {
    if (r.url().includes('/graphql') && r.postData()?.includes('importLicenses')) sent.push(r.postData()!);
  });
  await page.goto(`${server.base}/`);
  await page.waitForURL(/\/signin/);
  await submitSignIn(page, server.demo.tenant, server.demo.email, server.demo.password);
  await page.getByRole('heading', { level: 1, name: 'Dashboard' }).waitFor();
});

afterAll(async () => {
  await browser?.close();
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function licenseCount(): Promise<number> {
  const r = await gql<{ licenses: { totalCount: number } }>(server.base, server.demo.apiToken, `{ licenses(first: 1) { totalCount } }`);
  return r.licenses.totalCount;
}

async function open() {
  await page.goto(`${server.base}/licenses/import`);
  await page.getByRole('heading', { level: 1, name: 'Import licenses' }).waitFor();
}

/** The alert's text, once it shows `expected`. */
async function alertSaying(expected: string): Promise<string> {
  const alert = page.getByRole('alert').filter({ hasText: expected });
  await alert.waitFor();
  return (await alert.textContent())?.trim() ?? '';
}

/** The problem table's rows, as [line, problem]. */
async function problemRows(): Promise<string[][]> {
  const rows = page.locator('table tbody tr');
  await rows.first().waitFor();
  return rows.evaluateAll((trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent?.trim() ?? '')));
}

describe('importing a malformed file', () => {
  it('a bad value: the line and the field, in words, and nothing imported', async () => {
    const before = await licenseCount();
    await open();
    await page.getByLabel('Contents').fill(['product,edition,name,status,expiresAt', 'acme-cad,standard,Good row,,', 'acme-cad,standard,Bad row,bogus,next year'].join('\n'));
    await page.getByRole('button', { name: 'Import' }).click();
    await alertSaying('Nothing was imported: 2 problems on line 3.');
    expect(await problemRows()).toEqual([
      ['3', 'status: must be one of ACTIVE, SUSPENDED or REVOKED, not "bogus"'],
      ['3', 'expiresAt: is not an ISO 8601 date (2027-12-31, or 2027-12-31T09:00:00Z)'],
    ]);
    expect(await page.locator('main').textContent()).not.toMatch(RAW_ZOD);
    await shot(page, 'import-01-bad-values');
    expect(await licenseCount()).toBe(before);
  });

  it('JSON lines with a wrong type and a misspelt field', async () => {
    const before = await licenseCount();
    await open();
    await page.getByLabel('Format').selectOption('JSONL');
    await page
      .getByLabel('Contents')
      .fill([JSON.stringify({ product: 'acme-cad', edition: 'standard', maxActivations: 'ten' }), JSON.stringify({ product: 'acme-cad', edition: 'standard', maxActivation: 3 })].join('\n'));
    await page.getByRole('button', { name: 'Import' }).click();
    await alertSaying('Nothing was imported: 2 problems on 2 lines.');
    expect(await problemRows()).toEqual([
      ['1', 'maxActivations: must be a whole number, not text ("ten")'],
      ['2', 'maxActivation: is not a license field (did you mean maxActivations?)'],
    ]);
    expect(await page.locator('main').textContent()).not.toMatch(RAW_ZOD);
    expect(await licenseCount()).toBe(before);
  });

  it('the wrong format, a JSON array, a spreadsheet: what to change about the file', async () => {
    const before = await licenseCount();
    await open();
    await page.getByLabel('Contents').fill(JSON.stringify({ product: 'acme-cad', edition: 'standard' }));
    await page.getByRole('button', { name: 'Import' }).click();
    await alertSaying('The format is CSV, but the contents are JSON: choose JSON lines.');

    await page.getByLabel('File').setInputFiles({ name: 'licenses.json', mimeType: 'application/json', buffer: Buffer.from('[\n  {"product":"acme-cad","edition":"standard"}\n]\n') });
    expect(await page.getByLabel('Format').inputValue()).toBe('JSONL');
    await page.getByRole('button', { name: 'Import' }).click();
    await alertSaying('The file is one JSON array: JSON lines needs one license object per line, with no [ ] around them.');

    // The first bytes of an .xlsx (a zip), chosen as if it were a CSV.
    const xlsx = Buffer.from([0x50, 0x4b, 0x03, 0x04, 0x14, 0x00, 0x06, 0x00, 0x08, 0x00, 0x00, 0x00, 0x21, 0x00, 0x62, 0xee, 0x9d, 0x68]);
    await page.getByLabel('File').setInputFiles({ name: 'licenses.csv', mimeType: 'text/csv', buffer: xlsx });
    await page.getByRole('button', { name: 'Import' }).click();
    await alertSaying('The file is not a text file (a spreadsheet or a PDF?): export it as CSV (UTF-8) or JSON lines.');
    await shot(page, 'import-02-not-text');
    expect(await licenseCount()).toBe(before);
  });

  it('a file over 5 MB is refused before it is sent, however large', async () => {
    await open();
    const count = sent.length;
    for (const [mb, shown] of [
      [6, '6.0'],
      [20, '20.0'],
    ] as const) {
      // Large files go by path: a buffer is sent through the browser protocol in one message.
      const file = path.join(dir, `big-${mb}.csv`);
      writeFileSync(file, Buffer.alloc(mb * 1024 * 1024, 'a'));
      await page.getByLabel('File').setInputFiles(file);
      await alertSaying(`The file is ${shown} MB; at most 5 MB can be imported at once: split it into smaller files.`);
      await page.getByRole('button', { name: 'Import' }).click();
      await page.getByText('Paste the file contents or choose a file first.').waitFor();
    }
    expect(sent.length).toBe(count);
    expect(errors).toEqual([]);
  });
});
