// Loads the api's Swagger UI in headless Chromium, logs in through "Authorize" (OAuth2 password form) with a
// seeded user, runs "List my tasks" and checks the 200 with tasks. Run by run.sh, which starts a seeded api.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { launch } from './chromium.mjs';

const BASE_URL = process.env.BASE_URL;
const LOGIN = process.env.DOCS_LOGIN ?? 'admin';
const PASSWORD = process.env.DOCS_PASSWORD;
const SCREENSHOT = process.env.DOCS_SCREENSHOT;

test('Swagger UI at /docs renders, authorizes with a seeded user and lists tasks', async () => {
  assert.ok(BASE_URL && PASSWORD, 'BASE_URL and DOCS_PASSWORD are set by run.sh');
  const { context, close: closeBrowser } = await launch();
  try {
    const page = await context.newPage();
    const offsite = [];
    page.on('request', (request) => {
      if (!request.url().startsWith(BASE_URL) && !request.url().startsWith('data:')) offsite.push(request.url());
    });
    const errors = [];
    page.on('pageerror', (error) => errors.push(error.message));

    await page.goto(`${BASE_URL}/docs`);
    await page.waitForSelector('.opblock', { timeout: 30_000 });
    const operations = await page.locator('.opblock').count();
    assert.ok(operations >= 20, `every route is listed (${operations} operations)`);
    assert.equal(await page.locator('#operations-Tasks-listTasks').count(), 1);

    await page.click('.auth-wrapper button.authorize');
    await page.fill('#oauth_username', LOGIN);
    await page.fill('#oauth_password', PASSWORD);
    await page.click('.auth-container button.authorize[type="submit"], .auth-btn-wrapper button.authorize');
    // Swagger UI shows "Logout" once its call to /api/v1/auth/token succeeded.
    await page.locator('.modal-ux button:has-text("Logout")').waitFor({ timeout: 15_000 });
    await page.locator('.modal-ux button:has-text("Close")').first().click();

    const operation = page.locator('#operations-Tasks-listTasks');
    await operation.locator('.opblock-summary').click();
    const tryOut = operation.locator('button.try-out__btn');
    if (await tryOut.count() && (await tryOut.innerText()).includes('Try it out')) await tryOut.click();
    await operation.locator('button.execute').click();
    const status = operation.locator('.live-responses-table .response .response-col_status').first();
    await status.waitFor({ timeout: 15_000 });
    assert.equal((await status.innerText()).trim(), '200');
    const body = await operation.locator('.live-responses-table .response-col_description pre').first().innerText();
    const page1 = JSON.parse(body);
    assert.ok(page1.total > 0 && page1.items.length > 0, `tasks are listed: ${body.slice(0, 200)}`);

    if (SCREENSHOT) await page.screenshot({ path: SCREENSHOT, fullPage: false });
    assert.deepEqual(offsite, [], 'nothing is loaded from outside the api');
    assert.deepEqual(errors, [], 'no script errors');
  } finally {
    await closeBrowser();
  }
});
