import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launch, shot, submitSignIn, watchErrors } from './browser';
import { gql, startServer, type RunningServer } from './server';

// Member management in the console: an owner changes a role, resets a password and removes a member
// (with confirmation, which says how many of the member's API tokens go with the change); an admin adds
// members and sees only what an admin may do; a member changes their own password.

let server: RunningServer;
let browser: Browser;
let page: Page;
let errors: string[];

const stamp = Date.now().toString(36);
const ada = `ada-${stamp}@example.com`;
const bob = `bob-${stamp}@example.com`;
const cy = `cy-${stamp}@example.com`;
const dee = `dee-${stamp}@example.com`;
const eve = `eve-${stamp}@example.com`;
const PASSWORD = 'correct horse battery';

type Members = { members: { email: string; role: string }[] };
const members = async () => (await gql<Members>(server.base, server.demo.apiToken, `{ members { email role } }`)).members;
const signInWorks = async (email: string, password: string) =>
  (await gql<{ signIn: { __typename: string } }>(server.base, null, `mutation($input: SignInInput!) { signIn(input: $input) { __typename } }`, { input: { tenant: server.demo.tenant, email, password } })).signIn.__typename === 'SignInSuccess';

type Tokens = { apiTokens: { name: string; revokedAt: string | null; createdBy: { email: string } | null }[] };
const tokensOf = async (email: string) =>
  (await gql<Tokens>(server.base, server.demo.apiToken, `{ apiTokens { name revokedAt createdBy { email } } }`)).apiTokens.filter((t) => t.name.startsWith(`${email} `));

/** Signs in as `email` and makes API tokens in that session, as the member would in the console. */
async function mintAs(email: string, roles: string[]) {
  const post = (body: unknown, cookie?: string) =>
    fetch(`${server.base}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', ...(cookie ? { cookie } : {}) }, body: JSON.stringify(body) });
  const signedIn = await post({ query: `mutation($input: SignInInput!) { signIn(input: $input) { __typename } }`, variables: { input: { tenant: server.demo.tenant, email, password: PASSWORD } } });
  const cookie = signedIn.headers.get('set-cookie')!.split(';')[0]!;
  for (const role of roles) {
    const r = await post({ query: `mutation($input: CreateApiTokenInput!) { createApiToken(input: $input) { __typename } }`, variables: { input: { name: `${email} ${role}`, role } } }, cookie);
    expect(((await r.json()) as { data: { createApiToken: { __typename: string } } }).data.createApiToken.__typename).toBe('CreateApiTokenPayload');
  }
}

beforeAll(async () => {
  server = await startServer();
  for (const [email, role] of [[ada, 'SUPPORT'], [bob, 'READ_ONLY'], [cy, 'SUPPORT'], [dee, 'ADMIN']]) {
    await gql(server.base, server.demo.apiToken, `mutation($input: CreateMemberInput!) { createMember(input: $input) { __typename } }`, { input: { email, password: PASSWORD, role } });
  }
  await mintAs(dee, ['ADMIN', 'SUPPORT', 'READ_ONLY']);
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

  it("says how many of a member's API tokens a demotion or removal revokes, and revokes them; the token list shows whose they are", async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'API tokens' }).click();
    await page.getByRole('heading', { level: 1, name: 'API tokens' }).waitFor();
    for (const role of ['ADMIN', 'SUPPORT', 'READ_ONLY']) expect(await row(`${dee} ${role}`).getByTestId('token-creator').textContent()).toBe(dee);
    expect(await row('Initial owner token').getByTestId('token-creator').textContent()).toBe('—');
    await membersPage();

    await row(dee).getByRole('button', { name: 'Change role' }).click();
    const dialog = page.getByRole('dialog');
    const role = dialog.getByLabel('Role');
    // The help follows the role chosen: tokens above it are revoked.
    expect(await dialog.locator('.hint').count()).toBe(0);
    await role.selectOption('READ_ONLY');
    await dialog.getByText('2 API tokens made for them with a role above read-only will be revoked.').waitFor();
    await role.selectOption('SUPPORT');
    await dialog.getByText('1 API token made for them with a role above support will be revoked.').waitFor();
    await shot(page, 'members-demote-tokens');
    await dialog.getByRole('button', { name: 'Change role' }).click();
    await page.getByText(`${dee} is now support; their other sessions were signed out and 1 API token revoked.`).waitFor();
    expect((await tokensOf(dee)).map((t) => [t.name, t.revokedAt !== null])).toEqual(
      expect.arrayContaining([[`${dee} ADMIN`, true], [`${dee} SUPPORT`, false], [`${dee} READ_ONLY`, false]]),
    );

    await row(dee).getByRole('button', { name: 'Remove' }).click();
    await dialog.getByTestId('tokens-revoked').getByText('2 API tokens made for them will be revoked').waitFor();
    await dialog.getByRole('button', { name: 'Remove member' }).click();
    await page.getByText(`${dee} was removed and can no longer sign in; 2 API tokens revoked.`).waitFor();
    const after = await tokensOf(dee);
    expect(after).toHaveLength(3);
    for (const t of after) expect(t.revokedAt, t.name).not.toBeNull();

    // A member without tokens: the confirmation says so.
    await row(cy).getByRole('button', { name: 'Remove' }).click();
    expect(await dialog.getByTestId('tokens-revoked').textContent()).toBe('No API token was made for them.');
    await dialog.getByRole('button', { name: 'Cancel' }).click();
  });

  it('an admin manages the members below owner only, and cannot grant owner', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL(/\/signin/);
    await signIn(ada, 'ada reset password');
    await membersPage();
    expect(await row(server.demo.email).getByRole('button').count()).toBe(0);
    expect(await row(ada).getByRole('button').count()).toBe(0);
    // An admin adds members, below owner only.
    await page.getByRole('button', { name: 'Add member' }).click();
    const add = page.getByRole('dialog');
    const offered = await add.getByLabel('Role').locator('option').evaluateAll((os) => os.map((o) => (o as HTMLOptionElement).value));
    expect(offered).toEqual(['ADMIN', 'SUPPORT', 'READ_ONLY']);
    await add.getByLabel('Email').fill(eve);
    await add.getByLabel('Role').selectOption('READ_ONLY');
    await add.getByLabel('Initial password').fill(PASSWORD);
    await add.getByRole('button', { name: 'Add member' }).click();
    await page.getByText(`${eve} can now sign in as read-only.`).waitFor();
    await row(eve).waitFor();
    expect((await members()).find((m) => m.email === eve)?.role).toBe('READ_ONLY');
    expect(await signInWorks(eve, PASSWORD)).toBe(true);
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
    // A bookmark of a page the role may not open says so, with nothing to retry and no sign-in to repeat.
    for (const path of ['/settings/members', '/settings/tokens']) {
      await own.goto(`${server.base}${path}`);
      await own.getByRole('heading', { level: 1, name: 'Not allowed' }).waitFor();
      await own.getByText('Your role does not allow this.').waitFor();
      expect(await own.locator('#main').getByRole('button', { name: 'Try again' }).count()).toBe(0);
      expect(await own.locator('#main').getByRole('link', { name: 'Sign in again' }).count()).toBe(0);
    }
    await own.locator('#main').getByRole('link', { name: 'Dashboard' }).click();
    await own.getByRole('heading', { level: 1, name: 'Dashboard' }).waitFor();
    await own.context().close();
    expect(ownErrors).toEqual([]);
  });

  it('ran without console errors', () => {
    expect(errors).toEqual([]);
  });
});
