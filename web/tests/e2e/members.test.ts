import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launch, shot, submitSignIn, watchErrors } from './browser';
import { gql, startServer, type RunningServer } from './server';

// Member management in the console: an owner changes a role, resets a password and removes a member
// (with confirmation); an admin sees only what an admin may do; a member changes their own password.

let server: RunningServer;
let browser: Browser;
let page: Page;
let errors: string[];

const stamp = Date.now().toString(36);
const ada = `ada-${stamp}@example.com`;
const bob = `bob-${stamp}@example.com`;
const cy = `cy-${stamp}@example.com`;
const PASSWORD = 'correct horse battery';

type Members = { members: { email: string; role: string }[] };
const members = async () => (await gql<Members>(server.base, server.demo.apiToken, `{ members { email role } }`)).members;
const signInWorks = async (email: string, password: string) =>
  (await gql<{ signIn: { __typename: string } }>(server.base, null, `mutation($input: SignInInput!) { signIn(input: $input) { __typename } }`, { input: { tenant: server.demo.tenant, email, password } })).signIn.__typename === 'SignInSuccess';

beforeAll(async () => {
  server = await startServer();
  for (const [email, role] of [[ada, 'SUPPORT'], [bob, 'READ_ONLY'], [cy, 'SUPPORT']]) {
    await gql(server.base, server.demo.apiToken, `mutation($input: CreateMemberInput!) { createMember(input: $input) { __typename } }`, { input: { email, password: PASSWORD, role } });
  }
  browser = await launch();
  page = await (await browser.newContext({ viewport: { width: 1360, height: 860 } })).newPage();
  page.setDefaultTimeout(15_000);
  errors = watchErrors(page);
});

afterAll(async () => {
  await browser?.close();
  await server?.stop();
});

async function signIn(email: string, password: string) {
  await page.goto(`${server.base}/signin`);
  await submitSignIn(page, server.demo.tenant, email, password);
  await page.getByRole('heading', { level: 1, name: 'Dashboard' }).waitFor();
}

async function membersPage() {
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Members', exact: true }).click();
  await page.getByRole('heading', { level: 1, name: 'Members' }).waitFor();
}

const row = (text: string) => page.getByRole('row').filter({ hasText: text });

describe('members in the console', () => {
  it('an owner changes a role, resets a password and removes a member after confirming', async () => {
    await signIn(server.demo.email, server.demo.password);
    await membersPage();
    // One's own row is marked, and offers nothing: one's own password is changed under "Your account".
    await row(server.demo.email).getByText('You', { exact: true }).waitFor();
    expect(await row(server.demo.email).getByRole('button').count()).toBe(0);

    await row(ada).getByRole('button', { name: 'Change role' }).click();
    const dialog = page.getByRole('dialog');
    expect(await dialog.getByLabel('Role').inputValue()).toBe('SUPPORT');
    await dialog.getByLabel('Role').selectOption('ADMIN');
    await dialog.getByRole('button', { name: 'Change role' }).click();
    await page.getByText(`${ada} is now admin`).waitFor();
    await row(ada).getByText('Admin', { exact: true }).waitFor();
    expect((await members()).find((m) => m.email === ada)?.role).toBe('ADMIN');

    await row(ada).getByRole('button', { name: 'Reset password' }).click();
    await dialog.getByLabel('New password').fill('short');
    await dialog.getByRole('button', { name: 'Set password' }).click();
    await dialog.getByText(/at least 10 characters/).waitFor();
    await dialog.getByLabel('New password').fill('ada reset password');
    await dialog.getByRole('button', { name: 'Set password' }).click();
    await page.getByText(`New password set for ${ada}`).waitFor();
    expect(await signInWorks(ada, PASSWORD)).toBe(false);

    await row(bob).getByRole('button', { name: 'Remove' }).click();
    await dialog.getByText(`${bob} can no longer sign in`).waitFor();
    // Cancelling removes nothing.
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    expect((await members()).some((m) => m.email === bob)).toBe(true);
    await row(bob).getByRole('button', { name: 'Remove' }).click();
    await shot(page, 'members-remove-confirm');
    await dialog.getByRole('button', { name: 'Remove member' }).click();
    await page.getByText(`${bob} was removed`).waitFor();
    expect(await row(bob).count()).toBe(0);
    expect((await members()).some((m) => m.email === bob)).toBe(false);
    await shot(page, 'members-owner');
  });

  it('an admin manages the members below owner only, and cannot grant owner', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL(/\/signin/);
    await signIn(ada, 'ada reset password');
    await membersPage();
    expect(await row(server.demo.email).getByRole('button').count()).toBe(0);
    expect(await row(ada).getByRole('button').count()).toBe(0);
    expect(await page.getByRole('button', { name: 'Add member' }).count()).toBe(0);
    await row(cy).getByRole('button', { name: 'Change role' }).click();
    const options = await page.getByRole('dialog').getByLabel('Role').locator('option').evaluateAll((os) => os.map((o) => (o as HTMLOptionElement).value));
    expect(options).toEqual(['ADMIN', 'SUPPORT', 'READ_ONLY']);
    await page.getByRole('dialog').getByLabel('Role').selectOption('READ_ONLY');
    await page.getByRole('dialog').getByRole('button', { name: 'Change role' }).click();
    await page.getByText(`${cy} is now read-only`).waitFor();
    await shot(page, 'members-admin');
  });

  it('a member changes their own password: the current one is required, the session stays', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Your account' }).click();
    await page.getByRole('heading', { level: 1, name: 'Your account' }).waitFor();
    await page.getByLabel('Current password').fill('not the password');
    await page.getByLabel('New password', { exact: true }).fill('ada chosen password');
    await page.getByLabel('Repeat new password').fill('ada chosen password');
    await page.getByRole('button', { name: 'Change password' }).click();
    expect(await page.locator('#current-password-msg').textContent()).toMatch(/incorrect/);
    expect(await signInWorks(ada, 'ada chosen password')).toBe(false);

    await page.getByLabel('Current password').fill('ada reset password');
    await page.getByRole('button', { name: 'Change password' }).click();
    await page.getByText('Password changed.').waitFor();
    await shot(page, 'account-password');
    // Still signed in with this session.
    await page.reload();
    await page.getByRole('heading', { level: 1, name: 'Your account' }).waitFor();
    expect(await signInWorks(ada, 'ada chosen password')).toBe(true);
  });

  it('a read-only member opening /settings lands on a settings page of theirs, with their account in reach', async () => {
    const own = await (await browser.newContext({ viewport: { width: 1360, height: 860 } })).newPage();
    own.setDefaultTimeout(15_000);
    const ownErrors = watchErrors(own);
    await own.goto(`${server.base}/signin?next=${encodeURIComponent('/settings')}`);
    await submitSignIn(own, server.demo.tenant, cy, PASSWORD);
    await own.getByRole('heading', { level: 1, name: 'Signing keys' }).waitFor();
    expect(new URL(own.url()).pathname).toBe('/settings/signing-keys');
    const nav = own.getByRole('navigation', { name: 'Main' });
    expect(await nav.getByRole('link', { name: 'Members', exact: true }).count()).toBe(0);
    await nav.getByRole('link', { name: 'Your account' }).click();
    await own.getByRole('heading', { level: 1, name: 'Your account' }).waitFor();
    await own.context().close();
    expect(ownErrors).toEqual([]);
  });

  it('ran without console errors', () => {
    expect(errors).toEqual([]);
  });
});
