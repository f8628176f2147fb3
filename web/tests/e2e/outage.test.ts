import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launch, shot, submitSignIn } from './browser';
import { gql, startServer } from './server';

// The server the console talks to goes away for longer than a blip (a deploy, a host restart) and
// comes back on the same address with the same data, while people keep the dashboard open.

let server: Awaited<ReturnType<typeof startServer>>;
let browser: Browser;
const reader = { email: 'watcher@example.com', password: 'watcher-password-1' };

beforeAll(async () => {
  server = await startServer();
  browser = await launch();
  const r = await gql<{ createMember: { __typename: string } }>(server.base, server.demo.apiToken, `mutation($input: CreateMemberInput!) { createMember(input: $input) { __typename } }`, {
    input: { ...reader, role: 'READ_ONLY' },
  });
  expect(r.createMember.__typename).toBe('Member');
});

afterAll(async () => {
  await browser?.close();
  await server?.stop();
});

async function signedIn(email: string, password: string): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ viewport: { width: 1360, height: 860 }, locale: 'en-US' });
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  await page.goto(`${server.base}/signin`);
  await submitSignIn(page, server.demo.tenant, email, password);
  await page.getByRole('heading', { level: 1, name: 'Dashboard' }).waitFor();
  return { context, page };
}

/** Counts the sockets the page opens from now on that end without ever connecting: failed attempts. */
function failedSockets(page: Page): () => number {
  let failed = 0;
  page.on('websocket', (ws) => {
    let framed = false;
    ws.on('framereceived', () => (framed = true));
    ws.on('close', () => {
      if (!framed) failed++;
    });
  });
  return () => failed;
}

async function createCustomer(name: string) {
  await gql(server.base, server.demo.apiToken, `mutation($input: CreateCustomerInput!) { createCustomer(input: $input) { __typename } }`, { input: { name } });
}

/** The state the dashboard's live feed announces beside its title. */
const feedStatus = (page: Page) => page.locator('.card-header', { hasText: 'Live activity' }).locator('.live');

const customerRows = (page: Page, name: string) => page.locator('.feed li[data-type="customer.created"]', { hasText: name });

describe('a long outage of the server', () => {
  it('keeps reconnecting, says so meanwhile, and resumes the feeds for every role, nothing missed, nothing twice', async () => {
    const ro = await signedIn(reader.email, reader.password);
    const owner = await signedIn(server.demo.email, server.demo.password);
    const views = [ro.page, owner.page];
    for (const page of views) await feedStatus(page).filter({ hasText: /^\s*Live\s*$/ }).waitFor();
    const failures = views.map(failedSockets);

    await server.halt();
    // Five failed reconnection attempts: the point where the console used to give up for good.
    await expect.poll(() => Math.min(...failures.map((f) => f())), { timeout: 120_000, interval: 500 }).toBeGreaterThanOrEqual(5);
    for (const page of views) await feedStatus(page).filter({ hasText: /Disconnected, reconnecting/ }).waitFor();
    await shot(ro.page, 'outage-01-read-only-reconnecting');

    await server.resume();
    const stamp = Date.now().toString(36);
    // Right after the restart, quite possibly before the console is back: an owner replays it.
    await createCustomer(`During reconnect ${stamp}`);
    for (const page of views) await feedStatus(page).filter({ hasText: /^\s*Live\s*$/ }).waitFor({ timeout: 60_000 });
    await createCustomer(`Back online ${stamp}`);

    // The read-only member, who may not read the audit log, resumes its feed after the last event it
    // had, or where its feed started when none had arrived, and gets what happened meanwhile.
    for (const page of views) {
      await customerRows(page, `Back online ${stamp}`).waitFor();
      await customerRows(page, `During reconnect ${stamp}`).waitFor();
      expect(await customerRows(page, `During reconnect ${stamp}`).count()).toBe(1);
      expect(await customerRows(page, `Back online ${stamp}`).count()).toBe(1);
    }
    await shot(ro.page, 'outage-02-read-only-back');
    await ro.context.close();
    await owner.context.close();
    // A restart can take minutes on a loaded machine.
  }, 600_000);
});
