// A real OpenID provider for mpcnet's tests (panva/node-oidc-provider), on loopback over HTTPS
// with the certificate the test made. It offers the device authorization grant and the code
// flow to one public client, signs ID tokens with a fresh RSA key (RS256), and logs in whoever the user names.
//
//   node provider.mjs CERT.pem KEY.pem CLIENT_ID   -> first line on stdout: the issuer URL
//
// The login page is the test's own minimal one: /interaction/UID?login=EMAIL logs in EMAIL
// (its verified email) and grants the scopes asked for. Everything else is oidc-provider's.
import { readFileSync } from 'node:fs';
import { generateKeyPairSync } from 'node:crypto';
import https from 'node:https';
import Provider from 'oidc-provider';

const [certFile, keyFile, clientId] = process.argv.slice(2);
const server = https.createServer({ cert: readFileSync(certFile), key: readFileSync(keyFile) });
await new Promise((listening) => server.listen(0, '127.0.0.1', listening));
const issuer = `https://127.0.0.1:${server.address().port}`;

/**
 * oidc-provider keeps the device authorization request's parameters but puts no `nonce` in
 * the device flow's ID token; mpcnet needs it there, as providers that support a nonce in
 * this flow do. Once the user approved, copy it onto the device code the token comes from.
 */
async function carryNonce(ctx) {
  const code = ctx.oidc.deviceCode;
  code.nonce = code.params.nonce;
  await code.save();
  ctx.body = 'approved: you may close this page';
}

const signingKey = generateKeyPairSync('rsa', { modulusLength: 2048 })
  .privateKey.export({ format: 'jwk' });
const provider = new Provider(issuer, {
  // A native public client (RFC 8252): the device grant, and the code flow with PKCE (which
  // oidc-provider requires of public clients) redirected to 127.0.0.1 on any port.
  clients: [{
    client_id: clientId,
    application_type: 'native',
    token_endpoint_auth_method: 'none',
    grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'authorization_code'],
    response_types: ['code'],
    redirect_uris: ['http://127.0.0.1/callback'],
  }],
  jwks: { keys: [{ ...signingKey, kid: 'test-rsa', use: 'sig', alg: 'RS256' }] },
  features: {
    deviceFlow: { enabled: true, successSource: carryNonce },
    devInteractions: { enabled: false },
  },
  // The scopes' claims (email) in the ID token itself, not only at the userinfo endpoint.
  conformIdTokenClaims: false,
  claims: { openid: ['sub'], email: ['email', 'email_verified'] },
  findAccount: (_ctx, id) => ({
    accountId: id,
    claims: () => ({ sub: id, email: id, email_verified: true }),
  }),
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  cookies: { keys: ['mpcnet-test-only-cookie-key'] },
});
const providerHandler = provider.callback();

/** The login and consent steps: the user names the account in `login`. */
async function interaction(req, res, url) {
  const details = await provider.interactionDetails(req, res);
  if (details.prompt.name === 'login') {
    const login = url.searchParams.get('login');
    if (!login) {
      res.writeHead(400, { 'content-type': 'text/plain' }).end('name the account: ?login=EMAIL');
      return;
    }
    await provider.interactionFinished(req, res, { login: { accountId: login } },
      { mergeWithLastSubmission: false });
    return;
  }
  const grant = new provider.Grant({ accountId: details.session.accountId, clientId });
  const missing = details.prompt.details;
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  const grantId = await grant.save();
  await provider.interactionFinished(req, res, { consent: { grantId } },
    { mergeWithLastSubmission: true });
}

server.on('request', (req, res) => {
  const url = new URL(req.url, issuer);
  if (!url.pathname.startsWith('/interaction/')) {
    providerHandler(req, res);
    return;
  }
  interaction(req, res, url).catch((error) => {
    res.writeHead(400, { 'content-type': 'text/plain' }).end(String(error));
  });
});
console.log(issuer);
