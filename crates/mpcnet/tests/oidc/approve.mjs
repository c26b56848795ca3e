// The user of mpcnet's tests, over HTTP: opens the URL mpcnet showed (the device flow's
// verification URL, or an authorization request redirected back to mpcnet on 127.0.0.1), confirms
// a device code, logs in as EMAIL and consents, following redirects and keeping cookies itself.
//
//   NODE_EXTRA_CA_CERTS=CERT.pem node approve.mjs URL EMAIL
const [start, email] = process.argv.slice(2);
const cookies = new Map();

/** One request; remembers the cookies it sets and returns the response. */
async function request(url, options = {}) {
  const cookie = [...cookies].map(([name, value]) => `${name}=${value}`).join('; ');
  const response = await fetch(url, { ...options, redirect: 'manual', headers: { ...options.headers, cookie } })
    .catch((error) => { throw new Error(`${url}: ${error.cause ?? error}`); });
  for (const line of response.headers.getSetCookie()) {
    const [pair] = line.split(';');
    const at = pair.indexOf('=');
    cookies.set(pair.slice(0, at), pair.slice(at + 1));
  }
  return response;
}

/** Follows redirects from `response` to the page they end on. */
async function follow(response, url) {
  let current = url;
  while (response.status >= 300 && response.status < 400) {
    current = new URL(response.headers.get('location'), current);
    if (current.pathname.startsWith('/interaction/')) current.searchParams.set('login', email);
    response = await request(current);
  }
  return response;
}

/** The device flow: confirm the code's form, then log in and consent. */
async function approveDevice() {
  const confirm = await request(start);
  const page = await confirm.text();
  const field = (name) => page.match(new RegExp(`name="${name}" value="([^"]*)"`))?.[1];
  if (confirm.status !== 200 || !field('xsrf')) throw new Error(`no confirm form at ${start}: ${page}`);
  const form = new URLSearchParams({ xsrf: field('xsrf'), user_code: field('user_code'), confirm: 'yes' });
  const submitted = await request(new URL('/device', start), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: form.toString(),
  });
  return follow(submitted, new URL('/device', start));
}

/** The code flow: log in and consent; the last redirect reaches mpcnet's loopback listener. */
async function approveCode() {
  return follow(await request(start), new URL(start));
}

const device = new URL(start).pathname === '/device';
const done = device ? await approveDevice() : await approveCode();
const text = await done.text();
if (done.status !== 200) throw new Error(`the approval ended on ${done.status}: ${text}`);
console.log(`approved as ${email}: ${text.trim()}`);
