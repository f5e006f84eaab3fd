// A development OpenID Connect provider: panva's oidc-provider (certified) with its development
// interactions, a login page that signs in any name (with any password) and a consent page. Whoever signs in
// as NAME is `NAME@example.org`, verified, with `preferred_username` NAME. For trying sign-in with a provider
// on a laptop (docs/GUIDE.md) and for the browser test (oidc.test.mjs); never for production.
//
// Run: node tests/browser/dev-provider.mjs (after `npm ci` in tests/browser). Settings, from the environment:
// DEV_OIDC_PORT (9400), DEV_OIDC_CLIENT_ID (securecrud), DEV_OIDC_CLIENT_SECRET (dev-provider-secret),
// DEV_OIDC_REDIRECT_URI (http://127.0.0.1:8080/api/v1/auth/oidc/dev/callback, the api of `make run`).
import { pathToFileURL } from 'node:url';
import Provider from 'oidc-provider';

/// The provider on http://localhost:PORT, with the api registered as a confidential client.
export function devProvider({ port, clientId, clientSecret, redirectUri }) {
  const provider = new Provider(`http://localhost:${port}`, {
    clients: [{
      client_id: clientId,
      client_secret: clientSecret,
      redirect_uris: [redirectUri],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    }],
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['preferred_username'] },
    // The claims of the scopes go into the id_token (the api reads them from there).
    conformIdTokenClaims: false,
    findAccount: (ctx, id) => ({
      accountId: id,
      claims: () => ({ sub: id, email: `${id}@example.org`, email_verified: true, preferred_username: id }),
    }),
  });
  return provider.listen(port);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const env = process.env;
  const port = Number(env.DEV_OIDC_PORT ?? 9400);
  const server = devProvider({
    port,
    clientId: env.DEV_OIDC_CLIENT_ID ?? 'securecrud',
    clientSecret: env.DEV_OIDC_CLIENT_SECRET ?? 'dev-provider-secret',
    redirectUri: env.DEV_OIDC_REDIRECT_URI ?? 'http://127.0.0.1:8080/api/v1/auth/oidc/dev/callback',
  });
  server.on('listening', () => console.log(`development provider at http://localhost:${port}`));
}
