import { createHmac } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launch, shot, submitSignIn, watchErrors } from './browser';
import { gql, startServer, type RunningServer } from './server';

/** The console's webhook settings against a real receiver on 127.0.0.1 (allowed outside production). */

let server: RunningServer;
let browser: Browser;
let page: Page;
let errors: string[];
let receiver: Server;
let receiverUrl = '';
const got: { headers: IncomingHttpHeaders; body: string }[] = [];

beforeAll(async () => {
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      got.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const address = receiver.address();
  receiverUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/tessera-hook`;
  server = await startServer();
  browser = await launch();
  page = await (await browser.newContext({ viewport: { width: 1360, height: 860 } })).newPage();
  page.setDefaultTimeout(20_000);
  errors = watchErrors(page);
});

afterAll(async () => {
  await browser?.close();
  await server?.stop();
  await new Promise((r) => receiver?.close(r));
});

async function waitFor<T>(what: string, check: () => T | null | undefined | false, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function signedBy(secret: string, r: { headers: IncomingHttpHeaders; body: string }): boolean {
  const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(String(r.headers['tessera-signature']));
  return !!m && createHmac('sha256', secret).update(`${m[1]}.${r.body}`).digest('hex') === m[2];
}

describe('webhooks in the console', () => {
  let secret = '';
  let endpointUrl = '';

  it('creates an endpoint and shows its secret once', async () => {
    await page.goto(`${server.base}/`);
    await page.waitForURL(/\/signin/);
    await submitSignIn(page, server.demo.tenant, server.demo.email, server.demo.password);
    await page.getByRole('heading', { level: 1, name: 'Dashboard' }).waitFor();

    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Webhooks', exact: true }).click();
    await page.getByRole('heading', { level: 1, name: 'Webhooks' }).waitFor();
    await page.getByRole('button', { name: 'New endpoint' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel('URL').fill(receiverUrl);
    await dialog.getByLabel('Event types').fill('customer.*, licence.created');
    await dialog.getByRole('button', { name: 'Add endpoint' }).click();
    // The server refuses the unknown resource; its message lands on the field.
    await dialog.getByText(/Event types unknown resource "licence"/).waitFor();
    await dialog.getByLabel('Event types').fill('customer.*');
    await dialog.getByLabel('Description').fill('E2E receiver');
    await dialog.getByRole('button', { name: 'Add endpoint' }).click();
    const shown = page.getByTestId('webhook-secret');
    await shown.waitFor();
    secret = (await shown.textContent())?.trim() ?? '';
    expect(secret).toMatch(/^whsec_/);
    await page.getByRole('cell', { name: /E2E receiver/ }).waitFor();
    await shot(page, 'webhooks-01-created');
  });

  it('sends a test event, shows it in the delivery log, and replays it', async () => {
    await page.getByRole('link', { name: 'Deliveries' }).first().click();
    await page.getByRole('heading', { level: 1, name: receiverUrl }).waitFor();
    endpointUrl = page.url();
    await page.getByText('No deliveries yet').waitFor();
    await page.getByRole('button', { name: 'Send test event' }).click();

    const first = await waitFor('the test request', () => got.find((r) => r.headers['tessera-event-type'] === 'webhook.test'));
    expect(signedBy(secret, first)).toBe(true);
    const eventId = String(first.headers['tessera-event-id']);
    const rows = page.getByTestId('delivery');
    await rows.filter({ hasText: 'webhook.test' }).filter({ hasText: 'Succeeded' }).first().waitFor();
    expect(await rows.count()).toBe(1);
    expect(await rows.first().getByTestId('response-status').textContent()).toBe('204');
    await shot(page, 'webhooks-02-delivered');

    await rows.first().getByRole('button', { name: 'Replay' }).click();
    await page.getByText(`Event ${eventId} is being sent again.`).waitFor();
    const again = await waitFor('the replayed request', () => got.length >= 2 && got[got.length - 1]);
    expect(again.headers['tessera-event-id']).toBe(eventId);
    expect(signedBy(secret, again)).toBe(true);
    await page.getByTestId('delivery').nth(1).waitFor();
    // Every row has a Replay button, so the replayed delivery is found by its marker, not by the word.
    const replayed = rows.filter({ has: page.getByTestId('replay-of') });
    await replayed.filter({ hasText: 'Succeeded' }).waitFor();
    expect(await replayed.count()).toBe(1);
    expect(await page.getByTestId('delivery').count()).toBe(2);

    await rows.first().getByRole('button', { name: 'Details' }).click();
    await page.getByRole('dialog').getByRole('heading', { name: 'Attempts' }).waitFor();
    await page.getByRole('dialog').getByText(eventId).first().waitFor();
    await page.getByRole('dialog').getByRole('heading', { name: 'Body' }).waitFor();
    expect(await page.getByTestId('body-withheld').count()).toBe(0);
    await shot(page, 'webhooks-03-details');
    await page.keyboard.press('Escape');
    expect(errors).toEqual([]);
  });

  it('a READ_ONLY member sees the delivery log and its attempts, not the bodies (they need SUPPORT, like the audit log)', async () => {
    const email = `viewer-${Date.now()}@example.test`;
    const password = 'viewer-password-1';
    const r = await gql<{ createMember: { __typename: string } }>(server.base, server.demo.apiToken, `mutation($input: CreateMemberInput!) { createMember(input: $input) { __typename } }`, {
      input: { email, password, role: 'READ_ONLY' },
    });
    expect(r.createMember.__typename).toBe('Member');
    await page.context().clearCookies();
    await page.goto(`${server.base}/`);
    await page.waitForURL(/\/signin/);
    await submitSignIn(page, server.demo.tenant, email, password);
    await page.getByRole('heading', { level: 1, name: 'Dashboard' }).waitFor();

    await page.goto(endpointUrl);
    await page.getByRole('heading', { level: 1, name: receiverUrl }).waitFor();
    const rows = page.getByTestId('delivery');
    await rows.filter({ hasText: 'Succeeded' }).first().waitFor();
    expect(await page.getByRole('button', { name: 'Replay' }).count()).toBe(0);
    await rows.first().getByRole('button', { name: 'Details' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByRole('heading', { name: 'Attempts' }).waitFor();
    await dialog.getByTestId('body-withheld').waitFor();
    expect(await dialog.locator('pre').count()).toBe(0);
    expect(await dialog.locator('tbody tr').count()).toBeGreaterThan(0);
    await shot(page, 'webhooks-04-read-only-details');
    await page.keyboard.press('Escape');
    expect(errors).toEqual([]);
  });
});
