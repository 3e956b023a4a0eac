/**
 * The UI against the real all-in-one process with tokens: the login form, where the token is kept, what a
 * user sees on 401 and 403, and that no page breaks the Content-Security-Policy. Debian's Chromium via
 * playwright-core.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startGatescopeProcess, type GatescopeProcess } from '../support/gatescope-process.js';

const CHROMIUM = process.env.GATESCOPE_CHROMIUM ?? '/usr/bin/chromium';
const READ = 'ui-read-token-7f3a9c';
const ADMIN = 'ui-admin-token-2b8e41';

let gs: GatescopeProcess;
let context: BrowserContext;
let page: Page;
const violations: string[] = [];

beforeAll(async () => {
  gs = await startGatescopeProcess({ env: { GATESCOPE_TOKENS: `viewer:${READ}:read,ops:${ADMIN}:admin` } });
  context = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'gatescope-chromium-')), {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
  page = context.pages()[0] ?? (await context.newPage());
  page.on('console', (m) => {
    if (/Content Security Policy|Refused to/i.test(m.text())) violations.push(m.text());
  });
});
afterAll(async () => {
  await context?.close();
  await gs?.stop();
});

it('asks for a token, refuses a wrong one, keeps a good one for the tab only, and signs out', async () => {
  await page.goto(gs.http);
  const login = page.locator('#login');
  await login.waitFor({ timeout: 15_000 });
  expect(await page.locator('#login-message').innerText()).toMatch(/requires a token/);

  await page.locator('#login-token').fill('not-the-right-token');
  await page.locator('#login-submit').click();
  await page.waitForFunction(() =>
    /not valid/.test(document.querySelector('#login-message')?.textContent ?? ''),
  );

  await page.locator('#login-token').fill(READ);
  await page.locator('#login-submit').click();
  await page.locator('#empty-state, #totals').first().waitFor({ timeout: 15_000 });
  expect(await login.count()).toBe(0);
  expect(await page.locator('#conn.up').count()).toBe(1);
  const storage = await page.evaluate(() => ({
    session: sessionStorage.getItem('gatescope.token'),
    local: JSON.stringify({ ...localStorage }),
    url: location.href,
  }));
  expect(storage.session).toBe(READ);
  expect(storage.local).not.toContain(READ);
  expect(storage.url).not.toContain(READ);
  // Nor in the SQL console's history.
  expect(await page.evaluate(() => localStorage.getItem('gatescope.sql.history') ?? '')).not.toContain(READ);

  // A read token on the SQL console: a clear 403, not a login loop.
  await page.goto(`${gs.http}#/sql`);
  await page.locator('#sql-run').click();
  const error = page.locator('#sql-notice .error');
  await error.waitFor({ timeout: 15_000 });
  expect(await error.innerText()).toMatch(/ERR_AUTH_FORBIDDEN.*lacks the "admin" scope.*sign out/s);
  expect(await login.count()).toBe(0);

  await page.locator('#signout').click();
  await login.waitFor();
  expect(await page.evaluate(() => sessionStorage.getItem('gatescope.token'))).toBeNull();
  await page.locator('#login-token').fill(ADMIN);
  await page.locator('#login-submit').click();
  await page.locator('#sql-run').click();
  await page.waitForFunction(
    () => document.querySelector('#sql-result')?.getAttribute('data-state') === 'done',
    undefined,
    { timeout: 20_000 },
  );
  expect(await page.locator('#sql-notice .error').count()).toBe(0);

  // A new tab (a new session) starts signed out.
  const other = await context.newPage();
  await other.goto(gs.http);
  await other.locator('#login').waitFor({ timeout: 15_000 });
  await other.close();

  expect(violations).toEqual([]);
});

it('refuses a token in the URL instead of using it, and never logs the tokens', async () => {
  const res = await fetch(`${gs.http}?token=${READ}`);
  expect(res.status).toBe(400);
  expect(((await res.json()) as { error: { code: string } }).error.code).toBe('ERR_TOKEN_IN_URL');
  // The request was logged, masked (stdout arrives a little after the answer).
  for (let i = 0; i < 50 && !gs.log().includes('token=[REDACTED]'); i++)
    await new Promise((r) => setTimeout(r, 100));
  expect(gs.log()).toContain('token=[REDACTED]');
  expect(gs.log()).not.toContain(READ);
  expect(gs.log()).not.toContain(ADMIN);
});
