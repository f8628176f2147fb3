import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';

export const RESULTS = path.resolve(import.meta.dirname, '../../test-results');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export async function launch(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get update && apt-get install -y chromium`);
  mkdirSync(RESULTS, { recursive: true });
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
}

export async function shot(page: Page, name: string) {
  await page.screenshot({ path: path.join(RESULTS, `${name}.png`), fullPage: true });
}

/** Console errors and failed requests fail the test: the console must run clean. */
export function watchErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  return errors;
}

/** Fills in and sends the console's sign-in form, open on `page`; where it leads is the caller's to wait for. */
export async function submitSignIn(page: Page, tenant: string, email: string, password: string) {
  await page.getByLabel('Workspace').fill(tenant);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

/** Signs `page` in to the console at `base` as the demo owner and waits for the dashboard. */
export async function signInDemo(page: Page, base: string, demo: { tenant: string; email: string; password: string }) {
  await page.goto(`${base}/signin`);
  await submitSignIn(page, demo.tenant, demo.email, demo.password);
  await page.getByRole('heading', { level: 1, name: 'Dashboard' }).waitFor();
}
