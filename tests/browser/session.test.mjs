// Browser sessions in headless Chromium: a single-page app (app/index.html) served with the api behind one
// origin, as on the api's own site, logs in with `session: "cookie"`, survives a reload by refreshing from the
// cookie, lists tasks and logs out; its script can never read the refresh token. A page of another site
// (localhost, where the app is 127.0.0.1) then tries to use the victim's cookie and gets nothing.
// Run by run.sh, which starts a seeded api whose PUBLIC_BASE_URL is APP_ORIGIN.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { appServer } from './app-server.mjs';
import { launch } from './chromium.mjs';

const API = new URL(process.env.BASE_URL);
const APP_PORT = Number(process.env.APP_PORT);
const EVIL_PORT = Number(process.env.EVIL_PORT);
const LOGIN = process.env.DOCS_LOGIN ?? 'admin';
const PASSWORD = process.env.DOCS_PASSWORD;
const APP_ORIGIN = `http://127.0.0.1:${APP_PORT}`;
const EVIL_ORIGIN = `http://localhost:${EVIL_PORT}`;
const COOKIE = '__Host-securecrud_refresh';

/// Every request that reached the api through the app's origin.
const seen = [];

/// The app's origin, recording what reached the api through it.
const appOrigin = () => appServer(API, (req, answer) => seen.push({
  method: req.method, path: req.url, origin: req.headers.origin ?? null,
  cookie: (req.headers.cookie ?? '').includes(COOKIE), status: answer.statusCode,
}));

/// Another site: a page that tries every way a script or a form has to use the victim's cookie.
function evilServer() {
  const evil = `<!doctype html><html><body>
    <iframe name="sink"></iframe>
    <form id="form" method="POST" action="${APP_ORIGIN}/api/v1/auth/logout" target="sink"
          enctype="text/plain"><input name='{"a":"' value='"}'></form>
    <script>
      window.attack = async () => {
        const results = {};
        try {
          const r = await fetch('${APP_ORIGIN}/api/v1/auth/refresh', {
            method: 'POST', credentials: 'include', body: '{}',
            headers: { 'Content-Type': 'application/json', 'X-Requested-With': 'securecrud' },
          });
          results.cors = 'answered ' + r.status + ': ' + await r.text();
        } catch (error) {
          results.cors = 'blocked: ' + error.name;
        }
        try {
          const r = await fetch('${APP_ORIGIN}/api/v1/auth/refresh', {
            method: 'POST', mode: 'no-cors', credentials: 'include', body: '{}',
            headers: { 'Content-Type': 'text/plain' },
          });
          results.simple = r.type;
        } catch (error) {
          results.simple = 'blocked: ' + error.name;
        }
        document.getElementById('form').submit();
        await new Promise((resolve) => setTimeout(resolve, 1500));
        return results;
      };
    </script></body></html>`;
  return http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(evil);
  });
}

const listen = (server, host, port) => new Promise((resolve) => server.listen(port, host, resolve));

test('a cookie session survives a reload, its refresh token is out of the script\'s reach, and another site cannot use it', async (t) => {
  assert.ok(API && APP_PORT && EVIL_PORT && PASSWORD, 'set by run.sh');
  const app = appOrigin();
  const evil = evilServer();
  await listen(app, '127.0.0.1', APP_PORT);
  await listen(evil, '127.0.0.1', EVIL_PORT);
  const { context, close: closeBrowser } = await launch();
  try {
    const tab = await context.newPage();
    const errors = [];
    tab.on('pageerror', (error) => errors.push(error.message));
    await tab.goto(`${APP_ORIGIN}/`);

    // Log in through the page's form.
    await tab.fill('#username', LOGIN);
    await tab.fill('#password', PASSWORD);
    await tab.click('#login button');
    await tab.waitForFunction(() => document.getElementById('status').textContent === 'signed in');
    const login = seen.find((r) => r.path === '/api/v1/auth/login');
    assert.equal(login.status, 200);

    // The browser holds the cookie as the api set it; the page's script cannot see it.
    const cookies = await context.cookies(APP_ORIGIN);
    const session = cookies.find((c) => c.name === COOKIE);
    assert.ok(session, `the browser kept ${COOKIE}: ${JSON.stringify(cookies.map((c) => c.name))}`);
    assert.equal(session.httpOnly, true);
    assert.equal(session.secure, true);
    assert.equal(session.sameSite, 'Strict');
    assert.equal(session.path, '/');
    assert.ok(session.expires > Date.now() / 1000 + 6 * 86400, 'Max-Age: the session\'s remaining lifetime');
    assert.equal(await tab.evaluate(() => document.cookie.includes('securecrud_refresh')), false,
      'document.cookie cannot see the refresh token');

    // Reload: the access token in memory is gone; the cookie gives a new one.
    await tab.reload();
    assert.equal(await tab.evaluate(() => app.hasAccessToken()), false);
    assert.equal((await tab.evaluate(() => app.tasks())).status, 401, 'no token after the reload');
    const refreshed = await tab.evaluate(() => app.refresh());
    assert.equal(refreshed.status, 200);
    assert.equal(refreshed.body.refresh_token, undefined, 'never in a body the script can read');
    assert.equal(await tab.evaluate(() => document.cookie.includes('securecrud_refresh')), false);
    const rotated = (await context.cookies(APP_ORIGIN)).find((c) => c.name === COOKIE);
    t.diagnostic(`cookie kept by Chromium: ${JSON.stringify({ ...session, value: '…' })}`);
    assert.notEqual(rotated.value, session.value, 'the refresh rotated the cookie');
    const tasks = await tab.evaluate(() => app.tasks());
    assert.equal(tasks.status, 200);
    assert.ok(Array.isArray(tasks.body.items));

    // Another site tries to use the victim's cookie while the victim is signed in.
    const attacker = await context.newPage();
    await attacker.goto(`${EVIL_ORIGIN}/`);
    const attack = await attacker.evaluate(() => window.attack());
    assert.match(attack.cors, /^blocked/, `a cross-site script cannot call with credentials: ${attack.cors}`);
    const fromEvil = seen.filter((r) => r.origin === EVIL_ORIGIN);
    t.diagnostic(`attacker: ${JSON.stringify(attack)}; reached the api: ${JSON.stringify(fromEvil)}`);
    assert.ok(fromEvil.some((r) => r.method === 'POST'), 'the attacker\'s form and no-cors posts did arrive');
    assert.ok(fromEvil.every((r) => !r.cookie), `the cookie never travels cross-site: ${JSON.stringify(fromEvil)}`);
    assert.ok(fromEvil.every((r) => r.status >= 400), `nothing cross-site succeeds: ${JSON.stringify(fromEvil)}`);
    await attacker.close();
    const still = await tab.evaluate(() => app.refresh());
    assert.equal(still.status, 200, 'the victim\'s session is untouched');

    // Log out: the session ends and the cookie is cleared.
    assert.equal((await tab.evaluate(() => app.logout())).status, 204);
    const after = (await context.cookies(APP_ORIGIN)).find((c) => c.name === COOKIE);
    assert.equal(after, undefined, 'the cookie is gone');
    assert.equal((await tab.evaluate(() => app.refresh())).status, 401);
    assert.deepEqual(errors, [], 'no script errors');
  } finally {
    await closeBrowser();
    app.close();
    evil.close();
  }
});
