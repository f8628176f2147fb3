import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launch, shot, watchErrors } from './browser';
import { gql, startServer, type RunningServer } from './server';

// The console's live views on pages left open. Where time matters the browser's clock is driven by the
// test (Playwright's clock), so "5 minutes later" is a jump, not a wait.

let server: RunningServer;
let browser: Browser;
let context: BrowserContext;
let page: Page;
let errors: string[];
let license: { id: string; key: string };
const stamp = Date.now().toString(36);
const hostname = `kiosk-${stamp}`;
const fingerprint = `fp-clock-${stamp}`;

beforeAll(async () => {
  server = await startServer();
  browser = await launch();
  const { licenses } = await gql<{ licenses: { edges: { node: { id: string; key: string; provisioning: string; deploymentMode: string; status: string; activationsUsed: number; maxActivations: number | null } }[] } }>(
    server.base,
    server.demo.apiToken,
    `{ licenses(first: 50) { edges { node { id key provisioning deploymentMode status activationsUsed maxActivations } } } }`,
  );
  const found = licenses.edges
    .map((e) => e.node)
    .find((l) => l.provisioning !== 'FLOATING' && l.deploymentMode !== 'OFFLINE' && l.status === 'ACTIVE' && (l.maxActivations === null || l.activationsUsed < l.maxActivations));
  if (!found) throw new Error('the demo data has no active license with a free activation');
  license = found;
});

afterAll(async () => {
  await browser?.close();
  await server?.stop();
});

async function client(mutation: 'activate' | 'heartbeat', device = { fingerprint, hostname }) {
  const input = { key: license.key, fingerprint: device.fingerprint, client: { hostname: device.hostname, platform: 'linux' } };
  const r = await gql<Record<string, { __typename: string; code?: string }>>(
    server.base,
    null,
    `mutation($input: ${mutation === 'activate' ? 'ActivateInput' : 'HeartbeatInput'}!) { ${mutation}(input: $input) { __typename ... on LicensingError { code } } }`,
    { input },
  );
  expect(r[mutation]).toEqual({ __typename: mutation === 'activate' ? 'ActivateSuccess' : 'HeartbeatSuccess' });
}

/** A page of `ctx` (`prepare` sees it first), signed in as the demo owner, on the dashboard. */
async function signedIn(ctx: BrowserContext, prepare?: (p: Page) => void): Promise<Page> {
  const p = await ctx.newPage();
  p.setDefaultTimeout(20_000);
  prepare?.(p);
  await p.goto(`${server.base}/signin`);
  await p.getByLabel('Workspace').fill(server.demo.tenant);
  await p.getByLabel('Email').fill(server.demo.email);
  await p.getByLabel('Password').fill(server.demo.password);
  await p.getByRole('button', { name: 'Sign in' }).click();
  await p.getByRole('heading', { level: 1, name: 'Dashboard' }).waitFor();
  return p;
}

const lastSeen = () => page.getByRole('row', { name: new RegExp(hostname) }).getByRole('cell').nth(6);

describe('live views on an open page', () => {
  it("a device's Last seen moves on as time passes, and back to now with its heartbeat", async () => {
    context = await browser.newContext({ viewport: { width: 1360, height: 860 }, locale: 'en-US' });
    // Runs with the real time until paused below.
    await context.clock.install();
    // The license page is live once its `licenseLive` subscription has answered over the socket: it is
    // pushed changes from then on, and re-reads the license only on a push (or every 30 s).
    let pushed!: Promise<void>;
    page = await signedIn(context, (p) => {
      errors = watchErrors(p);
      pushed = new Promise<void>((resolve) => p.on('websocket', (ws) => ws.on('framereceived', (f) => String(f.payload).includes('"licenseLive"') && resolve())));
    });
    await client('activate');
    await page.goto(`${server.base}/licenses/${encodeURIComponent(license.id)}`);
    await lastSeen().filter({ hasText: /^just now$/ }).waitFor();
    await pushed;

    // From here the browser's time moves only when the test moves it; no timer fires by itself.
    await page.clock.pauseAt(Date.now() + 1_000);
    await page.clock.fastForward('05:00');
    await lastSeen().filter({ hasText: /^5 minutes ago$/ }).waitFor();
    await shot(page, 'live-times-01-five-minutes-later');

    // Back to the real time, with no timer run: the row shows the old time until something redraws it.
    await page.clock.setSystemTime(Date.now());
    expect(await lastSeen().textContent()).toBe('5 minutes ago');
    // The device checks in: the page, subscribed to the license's events, shows it at once.
    await client('heartbeat');
    await lastSeen().filter({ hasText: /^just now$/ }).waitFor();
    expect(errors).toEqual([]);
    await context.close();
  });
});
