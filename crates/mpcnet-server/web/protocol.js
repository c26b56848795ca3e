// mpcnet's formats as the web page needs them: keys, signatures, the lobby id, invites and
// creator links. Mirrors crates/mpcnet-proto (identity.rs, join.rs, invite.rs); the browser
// test creates a session here and checks it with the Rust code that parses and verifies it.

const encoder = new TextEncoder();

const bytesOf = (text) => encoder.encode(text);

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

export function base64url(bytes) {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

export function fromBase64url(text) {
  const padded = text.replaceAll("-", "+").replaceAll("_", "/");
  return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
}

export const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

function base32Lower(bytes) {
  const alphabet = "abcdefghijklmnopqrstuvwxyz234567";
  let bits = 0;
  let value = 0;
  let out = "";
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += alphabet[(value << (5 - bits)) & 31];
  return out;
}

export async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

/** SHA-256 over parts, each prefixed by its length as 8 little-endian bytes (Sha256Digest::of_parts). */
async function sha256OfParts(parts) {
  const framed = parts.flatMap((part) => {
    const length = new Uint8Array(8);
    new DataView(length.buffer).setBigUint64(0, BigInt(part.length), true);
    return [length, part];
  });
  return sha256(concat(...framed));
}

// An Ed25519 private key from its 32-byte seed: the seed wrapped in PKCS#8 (RFC 8410).
const PKCS8_ED25519_PREFIX = Uint8Array.from([
  0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
]);

/** An Ed25519 key pair from a seed: { seed, privateKey, publicKey (32 bytes) }. */
export async function keyFromSeed(seed) {
  const privateKey = await crypto.subtle.importKey(
    "pkcs8",
    concat(PKCS8_ED25519_PREFIX, seed),
    { name: "Ed25519" },
    true,
    ["sign"],
  );
  const jwk = await crypto.subtle.exportKey("jwk", privateKey);
  return { seed, privateKey, publicKey: fromBase64url(jwk.x) };
}

export const randomBytes = (length) => crypto.getRandomValues(new Uint8Array(length));

// Each signing purpose signs its own prefix (identity.rs, SigningPurpose).
export const PURPOSE = {
  offer: "mpcnet/v1/offer\0",
  joinByParty: "mpcnet/v1/join-by-party\0",
  joinProof: "mpcnet/v1/join-proof\0",
};

async function signBytes(key, purpose, payload) {
  const signature = await crypto.subtle.sign("Ed25519", key.privateKey, concat(bytesOf(purpose), payload));
  return base64url(new Uint8Array(signature));
}

/** `value` as JSON bytes signed by `key` for `purpose`: the shape of Signed<T>. */
export async function signJson(value, key, purpose) {
  const payload = bytesOf(JSON.stringify(value));
  return { payload, signed: { payload: base64url(payload), signature: await signBytes(key, purpose, payload) } };
}

/** The join key derived from the join secret (JoinSecret::join_key: HKDF-SHA256). */
export async function joinKeyOf(secret) {
  const material = await crypto.subtle.importKey("raw", secret, "HKDF", false, ["deriveBits"]);
  const seed = await crypto.subtle.deriveBits(
    { name: "HKDF", hash: "SHA-256", salt: bytesOf("mpcnet join key salt v1"), info: bytesOf("mpcnet join key v1") },
    material,
    256,
  );
  return keyFromSeed(new Uint8Array(seed));
}

/** The lobby id of a public join key (LobbyId::for_join_key). */
export async function lobbyIdOf(joinPublicKey) {
  const digest = await sha256OfParts([bytesOf("mpcnet lobby id v1"), joinPublicKey]);
  return base32Lower(digest.slice(0, 16));
}

/** The signed join record of `party` (SignedJoin::new). */
export async function signedJoin(party, name, joinKey, lobbyId, offerPayload) {
  const record = { lobby_id: lobbyId, party: hex(party.publicKey), name, offer: hex(await sha256(offerPayload)) };
  const { payload, signed } = await signJson(record, party, PURPOSE.joinByParty);
  return { record: signed, proof: await signBytes(joinKey, PURPOSE.joinProof, payload) };
}

const INVITE_PREFIX = "mpcnet1.";
const CREATOR_LINK_PREFIX = "mpcnet1o.";

// key (32) | join secret (32) | pin flag (1) [| pin (32)] | checksum (4): Invite::secret_part.
async function secretPart(key, secret, pin) {
  const body = concat(key, secret, pin ? Uint8Array.of(1) : Uint8Array.of(0), pin ?? new Uint8Array(0));
  return concat(body, (await sha256(body)).slice(0, 4));
}

/**
 * The invite (for every party) and the creator link (for the creator only) of a session, and
 * the creator's public key (hex), which the session's party 0 must have: an invite passed off
 * as a creator link decodes too, to a key that is nobody's.
 */
export async function sessionLinks(origin, lobbyId, creator, secret, pin) {
  const base = `${origin}/s/${lobbyId}#`;
  return {
    creatorKey: hex(creator.publicKey),
    invite: base + INVITE_PREFIX + base64url(await secretPart(creator.publicKey, secret, pin)),
    creatorLink: base + CREATOR_LINK_PREFIX + base64url(await secretPart(creator.seed, secret, pin)),
  };
}

/**
 * The parts of a link's fragment after `prefix` if its length, checksum and lobby id (that of
 * the page's path) all hold: { key, secret, pin }, where key is the creator's public key in an
 * invite and the creator's secret seed in a creator link (decode_secret_part in invite.rs).
 */
async function decodeFragment(fragment, prefix, lobbyId) {
  if (!fragment.startsWith(prefix)) return null;
  let bytes;
  try {
    bytes = fromBase64url(fragment.slice(prefix.length));
  } catch {
    return null;
  }
  const pinned = bytes[64] === 1;
  if (bytes[64] > 1 || bytes.length !== 65 + (pinned ? 32 : 0) + 4) return null;
  const body = bytes.slice(0, bytes.length - 4);
  const checksum = (await sha256(body)).slice(0, 4);
  if (checksum.some((byte, i) => byte !== bytes[body.length + i])) return null;
  const secret = body.slice(32, 64);
  if ((await lobbyIdOf((await joinKeyOf(secret)).publicKey)) !== lobbyId) return null;
  return { key: body.slice(0, 32), secret, pin: pinned ? body.slice(65, 97) : null };
}

/** The links of the session whose creator link has `fragment` (the part after #), or null. */
export async function linksFromCreatorFragment(origin, lobbyId, fragment) {
  const parts = await decodeFragment(fragment, CREATOR_LINK_PREFIX, lobbyId);
  if (!parts) return null;
  return sessionLinks(origin, lobbyId, await keyFromSeed(parts.key), parts.secret, parts.pin);
}

/**
 * The invite whose fragment is `fragment`, rebuilt from its checked bytes (so it carries
 * nothing else, whatever the address bar held), or null.
 */
export async function inviteFromFragment(origin, lobbyId, fragment) {
  const parts = await decodeFragment(fragment, INVITE_PREFIX, lobbyId);
  if (!parts) return null;
  const encoded = base64url(await secretPart(parts.key, parts.secret, parts.pin));
  return `${origin}/s/${lobbyId}#${INVITE_PREFIX}${encoded}`;
}

/** The command a party runs to join (and run) the session of `link`. */
export const runCommand = (link) => `mpcnet run '${link}'`;

/**
 * The creator's command: its link in an environment variable rather than an argument, so
 * other users of the machine cannot read the creator key from the process list.
 */
export const creatorCommand = (creatorLink) => `MPCNET_INVITE='${creatorLink}' mpcnet run`;
