// Passkeys in headless Chromium with a virtual authenticator (DevTools protocol `WebAuthn`: a platform
// authenticator with resident keys and user verification, as a phone's or a laptop's): the demo page
// (app/index.html), served with the api behind one origin on http://localhost (WebAuthn refuses IP
// addresses; the api, whose PUBLIC_BASE_URL is http://127.0.0.1:APP_PORT, accepts http://localhost:APP_PORT
// as its passkey origin in development), signs in with the password, registers a passkey, logs out, and signs
// back in with the passkey alone, in cookie mode.
// Run by run.sh (with CORS_ALLOWED_ORIGINS naming that origin, for the cookie's CSRF check).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appServer } from './app-server.mjs';
import { launch } from './chromium.mjs';

const API = new URL(process.env.BASE_URL);
const PORT = Number(process.env.PASSKEY_PORT);
// An account of its own (the other tests sign in as the seeded admin, whose password login must stay
// one-step): registered by this test.
const LOGIN = 'passkey_demo';
const PASSWORD = 'a passkey demo passphrase';
const ORIGIN = `http://localhost:${PORT}`;
const COOKIE = '__Host-securecrud_refresh';

test('the demo page registers a passkey, and signs back in with it and nothing else', async (t) => {
  assert.ok(API && PORT, 'set by run.sh');
  const server = appServer(API);
  await new Promise((resolve) => server.listen(PORT, '127.0.0.1', resolve));
  const { context, close: closeBrowser } = await launch();
  try {
    const tab = await context.newPage();
    const errors = [];
    tab.on('pageerror', (error) => errors.push(error.message));
    const devtools = await context.newCDPSession(tab);
    await devtools.send('WebAuthn.enable');
    const { authenticatorId } = await devtools.send('WebAuthn.addVirtualAuthenticator', {
      options: {
        protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true,
        isUserVerified: true, automaticPresenceSimulation: true,
      },
    });
    await tab.goto(`${ORIGIN}/`);
    const registered = await tab.evaluate(async ([username, password]) => {
      const r = await fetch('/api/v1/auth/register', {
        method: 'POST', headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ username, email: `${username}@example.com`, password }),
      });
      return r.status;
    }, [LOGIN, PASSWORD]);
    assert.equal(registered, 201);

    // Signed in with the password, the user adds a passkey (the password is asked again).
    await tab.fill('#username', LOGIN);
    await tab.fill('#password', PASSWORD);
    await tab.click('#login button');
    await tab.waitForFunction(() => document.getElementById('status').textContent === 'signed in');
    const added = await tab.evaluate((password) => app.addPasskey(password, 'Chromium'), PASSWORD);
    assert.equal(added.status, 201, JSON.stringify(added.body));
    assert.equal(added.body.name, 'Chromium');
    assert.equal(added.body.recovery_codes.length, 10, 'the first second factor brings recovery codes');
    const { credentials } = await devtools.send('WebAuthn.getCredentials', { authenticatorId });
    assert.equal(credentials.length, 1);
    assert.equal(credentials[0].isResidentCredential, true, 'a discoverable credential');
    assert.equal(credentials[0].rpId, 'localhost');

    // Logged out, the page signs in again with the passkey alone: no username, no password.
    assert.equal((await tab.evaluate(() => app.logout())).status, 204);
    await tab.fill('#username', '');
    await tab.fill('#password', '');
    await tab.click('#passkey-login');
    await tab.waitForFunction(() => document.getElementById('status').textContent === 'signed in');
    const session = (await context.cookies(ORIGIN)).find((c) => c.name === COOKIE);
    assert.ok(session, 'cookie mode: the refresh token is in the HttpOnly cookie');
    assert.equal(session.httpOnly, true);
    const tasks = await tab.evaluate(() => app.tasks());
    assert.equal(tasks.status, 200);
    assert.equal((await tab.evaluate(() => app.refresh())).status, 200, 'the cookie session refreshes');
    const after = await devtools.send('WebAuthn.getCredentials', { authenticatorId });
    t.diagnostic(`sign count after the login: ${after.credentials[0].signCount}`);
    assert.ok(after.credentials[0].signCount >= 1);

    // A password login now needs a second factor, and the passkey is one of them.
    const password = await tab.evaluate(async ([login, password]) => {
      const r = await fetch('/api/v1/auth/login', {
        method: 'POST', headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ login, password }),
      });
      return { status: r.status, body: await r.json() };
    }, [LOGIN, PASSWORD]);
    assert.equal(password.status, 401);
    assert.equal(password.body.code, 'mfa_required');
    assert.deepEqual(password.body.mfa_methods, ['passkey', 'recovery_code']);
    assert.deepEqual(errors, [], 'no script errors');
  } finally {
    await closeBrowser();
    server.close();
  }
});
