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
/** A second receiver, down (500) until `failingUp` is set. */
let failing: Server;
let failingUrl = '';
let failingUp = false;
const failingGot: string[] = [];

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
  failing = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      failingGot.push(Buffer.concat(chunks).toString('utf8'));
      res.writeHead(failingUp ? 204 : 500).end();
    });
  });
  await new Promise<void>((resolve) => failing.listen(0, '127.0.0.1', resolve));
  failingUrl = `http://127.0.0.1:${(failing.address() as { port: number }).port}/down-hook`;
  // One attempt per delivery, and two failed deliveries in a row disable an endpoint: quick to reach here.
  server = await startServer({ TESSERA_WEBHOOK_MAX_ATTEMPTS: '1', TESSERA_WEBHOOK_DISABLE_AFTER_FAILURES: '2' });
  browser = await launch();
  page = await (await browser.newContext({ viewport: { width: 1360, height: 860 } })).newPage();
  page.setDefaultTimeout(20_000);
  errors = watchErrors(page);
});

afterAll(async () => {
  await browser?.close();
  await server?.stop();
  await new Promise((r) => receiver?.close(r));
  await new Promise((r) => failing?.close(r));
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
  let editedId = '';

  it('creates an endpoint for the event types ticked (from the server\'s list) and shows its secret once', async () => {
    await page.goto(`${server.base}/`);
    await page.waitForURL(/\/signin/);
    await submitSignIn(page, server.demo.tenant, server.demo.email, server.demo.password);
    await page.getByRole('heading', { level: 1, name: 'Dashboard' }).waitFor();

    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Webhooks', exact: true }).click();
    await page.getByRole('heading', { level: 1, name: 'Webhooks' }).waitFor();
    await page.getByRole('button', { name: 'New endpoint' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByRole('heading', { name: 'New webhook endpoint' }).waitFor();
    // Every event by default (an empty list, as the server defines it); the types are checkboxes.
    const all = dialog.getByRole('checkbox', { name: 'All events' });
    expect(await all.isChecked()).toBe(true);
    expect(await dialog.getByRole('checkbox', { name: 'customer.created', exact: true }).isDisabled()).toBe(true);
    await dialog.getByLabel('URL').fill('http://user:secret@127.0.0.1/hook');
    await all.uncheck();
    // Nothing chosen is refused before sending.
    await dialog.getByRole('button', { name: 'Add endpoint' }).click();
    await dialog.getByText('Event types choose at least one, or All events').waitFor();
    await dialog.getByRole('checkbox', { name: 'customer.created', exact: true }).check();
    await dialog.getByRole('checkbox', { name: 'license.suspended', exact: true }).check();
    // A URL the console lets through and the server refuses: the server's message, on the field.
    await dialog.getByRole('button', { name: 'Add endpoint' }).click();
    await dialog.getByText('URL must not contain credentials').waitFor();
    await dialog.getByLabel('URL').fill(receiverUrl);
    await dialog.getByLabel('Description').fill('E2E receiver');
    await shot(page, 'webhooks-01-create');
    await dialog.getByRole('button', { name: 'Add endpoint' }).click();
    const shown = page.getByTestId('webhook-secret');
    await shown.waitFor();
    secret = (await shown.textContent())?.trim() ?? '';
    expect(secret).toMatch(/^whsec_/);
    const row = page.locator('tr', { hasText: 'E2E receiver' });
    await row.getByText('customer.created, license.suspended').waitFor();
    await shot(page, 'webhooks-01-created');
    const stored = await gql<{ webhookEndpoints: { edges: { node: { url: string; description: string; eventTypes: string[] } }[] } }>(
      server.base,
      server.demo.apiToken,
      `{ webhookEndpoints(first: 20) { edges { node { url description eventTypes } } } }`,
    );
    expect(stored.webhookEndpoints.edges.map((e) => e.node)).toEqual([
      { url: receiverUrl, description: 'E2E receiver', eventTypes: ['customer.created', 'license.suspended'] },
    ]);
    expect(errors).toEqual([]);
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

    // The endpoint's link cut short (pasted in part): not found, said plainly.
    await page.goto(endpointUrl.slice(0, -8));
    await page.getByRole('heading', { level: 1, name: 'Webhook endpoint not found' }).waitFor();
    await page.getByText('No webhook endpoint of this workspace has this id: it may have been deleted, mistyped or cut short.').waitFor();
    await page.getByRole('link', { name: 'Back to webhooks' }).waitFor();
    await page.goto(endpointUrl);
    await page.getByRole('heading', { level: 1, name: receiverUrl }).waitFor();
    expect(errors).toEqual([]);
  });

  it("edits an endpoint's URL, description and event types (chosen from the server's list); the server's messages land on the fields", async () => {
    const created = await gql<{ createWebhookEndpoint: { endpoint: { id: string } } }>(
      server.base,
      server.demo.apiToken,
      `mutation($input: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $input) { ... on CreateWebhookEndpointPayload { endpoint { id } } } }`,
      { input: { url: `${receiverUrl}/second`, description: 'Second receiver', eventTypes: ['customer.*'] } },
    );
    editedId = created.createWebhookEndpoint.endpoint.id;
    await page.goto(`${server.base}/settings/webhooks`);
    const row = page.locator('tr', { hasText: `${receiverUrl}/second` });
    await row.getByRole('button', { name: 'Edit' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByRole('heading', { name: 'Edit webhook endpoint' }).waitFor();
    expect(await dialog.getByLabel('URL').inputValue()).toBe(`${receiverUrl}/second`);
    expect(await dialog.getByRole('checkbox', { name: 'All events' }).isChecked()).toBe(false);
    expect(await dialog.getByRole('checkbox', { name: 'customer.*', exact: true }).isChecked()).toBe(true);
    // customer.* covers its types: they show chosen, and cannot be unchosen one by one.
    expect(await dialog.getByRole('checkbox', { name: 'customer.created', exact: true }).isDisabled()).toBe(true);

    // A URL the console lets through and the server refuses: the server's message, on the field.
    await dialog.getByLabel('URL').fill('http://user:secret@127.0.0.1/hook');
    await dialog.getByRole('button', { name: 'Save changes' }).click();
    await dialog.getByText('URL must not contain credentials').waitFor();
    // Nothing chosen is refused before sending.
    await dialog.getByLabel('URL').fill(failingUrl);
    await dialog.getByRole('checkbox', { name: 'customer.*', exact: true }).uncheck();
    await dialog.getByRole('button', { name: 'Save changes' }).click();
    await dialog.getByText('Event types choose at least one, or All events').waitFor();

    await dialog.getByRole('checkbox', { name: 'customer.created', exact: true }).check();
    await dialog.getByRole('checkbox', { name: 'license.*', exact: true }).check();
    await dialog.getByLabel('Description').fill('Edited in the console');
    await shot(page, 'webhooks-04-edit');
    await dialog.getByRole('button', { name: 'Save changes' }).click();
    await page.getByText(`${failingUrl} saved.`).waitFor();
    const edited = page.locator('tr', { hasText: failingUrl });
    await edited.getByText('Edited in the console').waitFor();
    await edited.getByText('customer.created, license.*').waitFor();
    const r = await gql<{ webhookEndpoint: { url: string; description: string; eventTypes: string[] } }>(
      server.base,
      server.demo.apiToken,
      `query($id: ID!) { webhookEndpoint(id: $id) { url description eventTypes } }`,
      { id: editedId },
    );
    expect(r.webhookEndpoint).toEqual({ url: failingUrl, description: 'Edited in the console', eventTypes: ['customer.created', 'license.*'] });
    expect(errors).toEqual([]);
  });

  it('shows an endpoint disabled after its deliveries kept failing, and enables it again', async () => {
    // Two customers: two deliveries that fail (one attempt each), the second disables the endpoint.
    for (const name of ['Down 1', 'Down 2']) {
      await gql(server.base, server.demo.apiToken, `mutation($name: String!) { createCustomer(input: { name: $name }) { __typename } }`, { name });
    }
    const state = () =>
      gql<{ webhookEndpoint: { enabled: boolean; disabledReason: string | null; consecutiveFailures: number } }>(
        server.base,
        server.demo.apiToken,
        `query($id: ID!) { webhookEndpoint(id: $id) { enabled disabledReason consecutiveFailures } }`,
        { id: editedId },
      );
    const deadline = Date.now() + 60_000;
    while ((await state()).webhookEndpoint.enabled) {
      if (Date.now() > deadline) throw new Error('timed out waiting for the endpoint to be disabled');
      await new Promise((r) => setTimeout(r, 200));
    }
    expect((await state()).webhookEndpoint).toEqual({ enabled: false, disabledReason: 'DELIVERY_FAILURES', consecutiveFailures: 2 });
    expect(failingGot).toHaveLength(2);

    await page.goto(`${server.base}/settings/webhooks`);
    const row = page.locator('tr', { hasText: failingUrl });
    await row.getByText('Disabled', { exact: true }).waitFor();
    expect(await row.getByTestId('disabled-note').textContent()).toMatch(/^Disabled automatically after 2 failed deliveries on .+/);
    await shot(page, 'webhooks-05-auto-disabled');

    await row.getByRole('link', { name: 'Deliveries' }).click();
    await page.getByRole('heading', { level: 1, name: failingUrl }).waitFor();
    const note = page.getByTestId('disabled-note');
    expect(await note.textContent()).toMatch(/^Disabled automatically after 2 failed deliveries on .+\.$/);
    await page.getByTestId('delivery').filter({ hasText: 'Failed' }).nth(1).waitFor();
    await shot(page, 'webhooks-06-auto-disabled-detail');

    // A customer made while it is off: missed, and offered when enabling it.
    await gql(server.base, server.demo.apiToken, `mutation { createCustomer(input: { name: "While down" }) { __typename } }`);
    const missed = async () =>
      (await gql<{ webhookEndpoint: { missedEvents: number | null } }>(server.base, server.demo.apiToken, `query($id: ID!) { webhookEndpoint(id: $id) { missedEvents } }`, { id: editedId }))
        .webhookEndpoint.missedEvents;
    for (const deadline = Date.now() + 30_000; (await missed()) !== 1; ) {
      if (Date.now() > deadline) throw new Error('timed out waiting for the missed event to be counted');
      await new Promise((r) => setTimeout(r, 200));
    }
    await page.reload();
    expect(await page.getByTestId('missed-events').textContent()).toMatch(/1 event of its types was raised\s+while it was disabled/);

    failingUp = true;
    await page.getByRole('button', { name: 'Enable', exact: true }).click();
    const dialog = page.getByRole('dialog', { name: 'Enable this endpoint?' });
    await dialog.getByRole('checkbox', { name: /Also send the event raised while it was disabled/ }).check();
    await shot(page, 'webhooks-07-enable-with-missed');
    await dialog.getByRole('button', { name: 'Enable', exact: true }).click();
    await page.getByRole('button', { name: 'Disable', exact: true }).waitFor();
    await page.getByText('Enabled: the event raised while it was disabled is being sent, then what follows.').waitFor();
    expect(await note.count()).toBe(0);
    await waitFor('the missed customer at the receiver', () => failingGot.find((b) => JSON.parse(b).data?.name === 'While down' || b.includes('While down')));
    expect((await state()).webhookEndpoint).toEqual({ enabled: true, disabledReason: null, consecutiveFailures: 0 });
    await page.getByRole('button', { name: 'Send test event' }).click();
    await page.getByTestId('delivery').filter({ hasText: 'webhook.test' }).filter({ hasText: 'Succeeded' }).waitFor();
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
