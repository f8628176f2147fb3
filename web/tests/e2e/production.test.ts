import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launch, shot, submitSignIn, watchErrors } from './browser';
import { startServer, type RunningServer } from './server';

// With NODE_ENV=production the server runs only known documents for callers without a session: the
// console's app shell and sign-in page must still work (schema/console-operations.json).
let server: RunningServer;
let browser: Browser;
let page: Page;
let errors: string[];

beforeAll(async () => {
  server = await startServer({ NODE_ENV: 'production' });
  browser = await launch();
  page = await (await browser.newContext({ viewport: { width: 1360, height: 860 } })).newPage();
  page.setDefaultTimeout(15_000);
  errors = watchErrors(page);
});

afterAll(async () => {
  await browser?.close();
  await server?.stop();
});

describe('admin console in production', () => {
  it('signs in, shows the live dashboard, signs out, and sends an ended session back to sign in', async () => {
    await page.goto(`${server.base}/`);
    await page.waitForURL(/\/signin/);
    await submitSignIn(page, server.demo.tenant, server.demo.email, server.demo.password);
    await page.getByRole('heading', { level: 1, name: 'Dashboard' }).waitFor();
    await page.locator('.feed li').first().waitFor();
    await shot(page, 'production-dashboard');

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL(/\/signin/);
    await page.goto(`${server.base}/licenses`);
    await page.waitForURL(/\/signin\?next=%2Flicenses/);
    expect(errors).toEqual([]);
  });
});
