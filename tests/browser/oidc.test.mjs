// Sign in with an OpenID Connect provider in headless Chromium, through the provider's own pages: panva's
// oidc-provider (certified; dev-provider.mjs: its development interactions are a login form that accepts any
// name, and a consent page), run here on http://localhost:OIDC_PORT. The demo page (app/index.html), served with the api
// behind one origin (APP_PORT, the api's PUBLIC_BASE_URL), shows a button per provider; the browser goes to the
// provider through the api, signs in there, and lands back on the page with a cookie session.
// Run by run.sh, which starts the api with the provider `dev` configured (OIDC_* variables).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appServer } from './app-server.mjs';
import { devProvider } from './dev-provider.mjs';
import { launch } from './chromium.mjs';

const API = new URL(process.env.BASE_URL);
const APP_PORT = Number(process.env.APP_PORT);
const OIDC_PORT = Number(process.env.OIDC_PORT);
const APP_ORIGIN = `http://127.0.0.1:${APP_PORT}`;
const COOKIE = '__Host-securecrud_refresh';

test('a user signs in through the provider\'s login page and lands on the demo page with a cookie session', async (t) => {
  assert.ok(API && APP_PORT && OIDC_PORT, 'set by run.sh');
  const idp = devProvider({
    port: OIDC_PORT,
    clientId: process.env.OIDC_CLIENT_ID,
    clientSecret: process.env.OIDC_CLIENT_SECRET,
    redirectUri: `${APP_ORIGIN}/api/v1/auth/oidc/dev/callback`,
  });
  const app = appServer(API);
  let closeBrowser = async () => {};
  try {
    await new Promise((resolve) => app.listen(APP_PORT, '127.0.0.1', resolve));
    const launched = await launch();
    closeBrowser = launched.close;
    const { context } = launched;
    const tab = await context.newPage();
    const errors = [];
    tab.on('pageerror', (error) => errors.push(error.message));
    // The api found the provider at start or finds it now (it tries again at most every 5 s).
    let discovered = 0;
    for (const deadline = Date.now() + 15000; discovered !== 302 && Date.now() < deadline;) {
      const r = await fetch(`${API.origin}/api/v1/auth/oidc/dev/authorize?redirect_uri=${encodeURIComponent(`${APP_ORIGIN}/`)}`,
        { redirect: 'manual' });
      discovered = r.status;
      if (discovered !== 302) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.equal(discovered, 302, 'the api reaches the provider');

    await tab.goto(`${APP_ORIGIN}/`);
    await tab.click('button[data-provider="dev"]');
    // The provider's own login page: any name signs in (development interactions).
    await tab.waitForURL((url) => url.origin === `http://localhost:${OIDC_PORT}`);
    await tab.fill('input[name="login"]', 'oidc_demo');
    await tab.fill('input[name="password"]', 'anything');
    await tab.click('button[type="submit"]');
    // Its consent page.
    await tab.waitForSelector('input[name="prompt"][value="consent"]', { state: 'attached' });
    await tab.click('button[type="submit"]');
    // Back on the demo page: the login code was exchanged for a cookie session.
    await tab.waitForURL(`${APP_ORIGIN}/`);
    await tab.waitForFunction(() => document.getElementById('status').textContent !== 'signed out');
    assert.equal(await tab.textContent('#status'), 'signed in');
    assert.equal(new URL(tab.url()).hash, '', 'the login code is off the address bar');
    const me = await tab.evaluate(async () => {
      const { body } = await window.app.refresh();
      const r = await fetch('/api/v1/users/me', { headers: { Authorization: `Bearer ${body.access_token}` } });
      return r.json();
    });
    assert.equal(me.username, 'oidc_demo');
    assert.equal(me.email, 'oidc_demo@example.org');
    assert.equal(me.email_verified, true);
    assert.equal(me.has_password, false);
    const cookies = await context.cookies(APP_ORIGIN);
    const session = cookies.find((c) => c.name === COOKIE);
    assert.ok(session?.httpOnly, 'the refresh token is in the HttpOnly cookie');
    // The session survives a reload: the access token comes back from the cookie.
    await tab.reload();
    const refreshed = await tab.evaluate(() => window.app.refresh());
    assert.equal(refreshed.status, 200);
    assert.equal((await tab.evaluate(() => window.app.tasks())).status, 200);
    // Signing in again finds the same account (the provider's session skips its login page).
    const again = await tab.evaluate(() => window.app.logout());
    assert.equal(again.status, 204);
    await tab.click('button[data-provider="dev"]');
    await tab.waitForURL(`${APP_ORIGIN}/`);
    await tab.waitForFunction(() => document.getElementById('status').textContent === 'signed in');
    const identities = await tab.evaluate(async () => {
      const { body } = await window.app.refresh();
      const r = await fetch('/api/v1/users/me/identities', { headers: { Authorization: `Bearer ${body.access_token}` } });
      return r.json();
    });
    assert.equal(identities.items.length, 1);
    assert.equal(identities.items[0].provider, 'dev');
    assert.equal(identities.items[0].subject, 'oidc_demo');
    assert.deepEqual(errors, []);
  } finally {
    await closeBrowser();
    app.close();
    idp.close();
  }
});
