import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launch, shot, submitSignIn, watchErrors } from './browser';
import { gql, startServer, type RunningServer } from './server';

/** Seat analytics on a floating license: seats checked out through the client API, read back in the console. */

let server: RunningServer;
let browser: Browser;
let page: Page;
let errors: string[];
let floating: { id: string; key: string };

const stamp = Date.now().toString(36);

beforeAll(async () => {
  server = await startServer();
  browser = await launch();
  page = await (await browser.newContext({ viewport: { width: 1360, height: 860 } })).newPage();
  page.setDefaultTimeout(20_000);
  errors = watchErrors(page);
  const { licenses } = await gql<{ licenses: { edges: { node: { id: string; key: string; provisioning: string } }[] } }>(
    server.base,
    server.demo.apiToken,
    `{ licenses(first: 50) { edges { node { id key provisioning } } } }`,
  );
  const found = licenses.edges.map((e) => e.node).find((l) => l.provisioning === 'FLOATING');
  if (!found) throw new Error('the demo data has no floating license');
  floating = found;
});

afterAll(async () => {
  await browser?.close();
  await server?.stop();
});

/** What a running client does: no token, the license key. */
async function checkout(user: string, department?: string) {
  const { checkoutSeat } = await gql<{ checkoutSeat: { __typename: string } }>(
    server.base,
    null,
    `mutation($input: CheckoutSeatInput!) { checkoutSeat(input: $input) { __typename } }`,
    { input: { key: floating.key, fingerprint: `fp-${user}`, user, ...(department ? { department } : {}) } },
  );
  expect(checkoutSeat.__typename).toBe('SeatLease');
}

const table = () => page.getByTestId('seat-breakdown');
const row = (key: string) => table().locator('tbody tr', { has: page.locator('th', { hasText: new RegExp(`^${key}$`) }) });
/** Waits until the row for `key` shows `leases` leases (the first number column). */
const leasesShown = (key: string, leases: number) =>
  page.waitForFunction(
    ([k, n]) =>
      [...document.querySelectorAll('[data-testid="seat-breakdown"] tbody tr')].some(
        (tr) => tr.querySelector('th')?.textContent?.trim() === k && tr.querySelector('td')?.textContent?.trim() === String(n),
      ),
    [key, leases] as const,
  );

describe('seat use by department', () => {
  it('signs in', async () => {
    await page.goto(`${server.base}/`);
    await page.waitForURL(/\/signin/);
    await submitSignIn(page, server.demo.tenant, server.demo.email, server.demo.password);
    await page.getByRole('heading', { level: 1, name: 'Dashboard' }).waitFor();
  });

  it('shows an empty state before any seat is used', async () => {
    await page.goto(`${server.base}/licenses/${encodeURIComponent(floating.id)}`);
    await page.getByRole('heading', { name: 'Seat use by department' }).waitFor();
    await page.getByText('No seat use in this period').waitFor();
  });

  it('counts leases per department, with "Not reported" for clients that send none', async () => {
    await checkout(`ada-${stamp}@umbrella.example`, 'Design');
    await checkout(`bob-${stamp}@umbrella.example`, 'Design');
    await checkout(`cy-${stamp}@umbrella.example`, 'Design');
    await checkout(`dee-${stamp}@umbrella.example`, 'Finance');
    await checkout(`eve-${stamp}@umbrella.example`);
    await page.reload();
    await table().waitFor();
    await leasesShown('Design', 3);
    await leasesShown('Finance', 1);
    await leasesShown('Not reported', 1);
    // Design held the most seat time, so it comes first; the peak is the three seats held at once.
    expect(await table().locator('tbody th').first().textContent()).toMatch(/Design/);
    const design = row('Design').locator('td');
    expect(await design.nth(2).textContent()).toBe('3');
    expect(await design.nth(1).textContent()).toMatch(/^\d+ (s|min)$/);
    await row('Design').getByRole('img', { name: /Seat time per day/ }).waitFor();
    await shot(page, '20-seat-breakdown');
  });

  it('follows new checkouts while the page is open', async () => {
    await checkout(`fay-${stamp}@umbrella.example`, 'Finance');
    await leasesShown('Finance', 2);
  });

  it('regroups by user and changes the period from the keyboard', async () => {
    await page.getByLabel('Group by').selectOption('USER');
    await page.getByRole('heading', { name: 'Seat use by user' }).waitFor();
    await table().getByRole('columnheader', { name: 'User', exact: true }).waitFor();
    for (const user of ['ada', 'bob', 'cy', 'dee', 'eve', 'fay']) await leasesShown(`${user}-${stamp}@umbrella.example`, 1);

    const period = page.getByLabel('Period');
    await period.focus();
    await page.keyboard.press('ArrowUp');
    expect(await period.inputValue()).toBe('7');
    await page.getByText('6 users · last 7 days (UTC)').waitFor();
    await leasesShown(`ada-${stamp}@umbrella.example`, 1);

    await page.getByLabel('Group by').selectOption('DEPARTMENT');
    await leasesShown('Design', 3);
  });

  it('an operator frees a held seat; its client is told to check out again', async () => {
    const user = `gus-${stamp}@umbrella.example`;
    const { checkoutSeat: lease } = await gql<{ checkoutSeat: { id: string } }>(
      server.base,
      null,
      `mutation($input: CheckoutSeatInput!) { checkoutSeat(input: $input) { ... on SeatLease { id } } }`,
      { input: { key: floating.key, fingerprint: `fp-${user}`, user } },
    );
    const seats = page.locator('section.card', { has: page.getByRole('heading', { name: 'Seats', exact: true }) });
    const held = seats.locator('table:not([data-testid]) tbody tr', { hasText: user });
    await held.waitFor();
    const inUse = async () => Number((await page.getByTestId('seats-in-use').textContent())!.split(' / ')[0]);
    const before = await inUse();
    await held.getByRole('button', { name: 'Free seat' }).click();
    const dialog = page.getByRole('dialog', { name: 'Free this seat?' });
    await dialog.getByText(`${user} loses the seat now`).waitFor();
    await dialog.getByRole('button', { name: 'Free seat' }).click();
    await page.getByText(`The seat of ${user} is free again.`).waitFor();
    await held.waitFor({ state: 'detached' });
    expect(await inUse()).toBe(before - 1);
    // The client's next renewal is refused with the code that tells it to check out again.
    const { heartbeatSeat } = await gql<{ heartbeatSeat: { __typename: string; code?: string } }>(
      server.base,
      null,
      `mutation($input: LeaseInput!) { heartbeatSeat(input: $input) { __typename ... on LicensingError { code } } }`,
      { input: { leaseId: lease.id, key: floating.key } },
    );
    expect(heartbeatSeat).toEqual({ __typename: 'LicensingError', code: 'LEASE_EXPIRED' });
    await shot(page, '22-seat-freed');
  });

  it('fits a narrow screen', async () => {
    await page.setViewportSize({ width: 420, height: 860 });
    await table().waitFor();
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(420);
    await shot(page, '21-seat-breakdown-narrow');
    await page.setViewportSize({ width: 1360, height: 860 });
  });

  it('ran without console errors', () => {
    expect(errors).toEqual([]);
  });
});
