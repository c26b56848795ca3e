// Named seats as the create page reads them: one party a line, `did:key:z6Mk… [name]`, `#`
// comments (at a line's start or after a space), blank lines skipped. Mirrors
// crates/mpcnet-proto (seats.rs parse_list, did_key.rs, label.rs); the browser test checks
// the offer the page signs against the Rust parser's reading of the same text.

import { hex } from "./protocol.js";

const BASE58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
const DID_KEY = "did:key:";
const ED25519_PREFIX = [0xed, 0x01];
const MAX_LABEL_CHARS = 64;
const SPACE = /\p{White_Space}/u;
// Control characters and bidirectional overrides (label.rs, is_unsafe_to_show).
const UNSAFE = /[\p{Cc}\u200e\u200f\u202a-\u202e\u2066-\u2069]/u;

/** The bytes of base58btc `text` (leading "1"s are zero bytes), or null if it is not base58. */
function fromBase58(text) {
  let value = 0n;
  for (const char of text) {
    const digit = BASE58_ALPHABET.indexOf(char);
    if (digit < 0) return null;
    value = value * 58n + BigInt(digit);
  }
  const bytes = [];
  for (; value > 0n; value >>= 8n) bytes.unshift(Number(value & 0xffn));
  const zeros = text.length - text.replace(/^1+/, "").length;
  return Uint8Array.from([...new Array(zeros).fill(0), ...bytes]);
}

/** The fingerprint shape (`k7qm-3xzp-a2c4`), which names no key. */
const looksLikeFingerprint = (text) => /^[a-z2-7]{4}(-[a-z2-7]{4})+$/.test(text);

/** The 32 bytes of an Ed25519 key's did:key (PublicKey::from_did_key); throws why not. */
export function keyOfDidKey(text) {
  if (!text.startsWith(DID_KEY)) {
    if (looksLikeFingerprint(text)) {
      throw new Error(`"${text}" is a key fingerprint, too short to name a key: give the party's did:key (\`mpcnet id\` prints it)`);
    }
    throw new Error(`"${text.slice(0, 60)}" is not a did:key (did:key:z6Mk…, as \`mpcnet id\` prints it)`);
  }
  const multibase = text.slice(DID_KEY.length);
  if (!multibase.startsWith("z")) throw new Error("the did:key is not in base58btc (it must start with did:key:z)");
  const bytes = fromBase58(multibase.slice(1));
  if (!bytes) throw new Error("the did:key is not valid base58");
  if (bytes.length !== 34 || bytes[0] !== ED25519_PREFIX[0] || bytes[1] !== ED25519_PREFIX[1]) {
    throw new Error("the did:key is not an Ed25519 public key (did:key:z6Mk…)");
  }
  return bytes.slice(2);
}

/** `line` up to its comment: a `#` at its start or after whitespace. */
function withoutComment(line) {
  let previousIsSpace = true;
  for (const [at, char] of [...line].entries()) {
    if (char === "#" && previousIsSpace) return [...line].slice(0, at).join("");
    previousIsSpace = SPACE.test(char);
  }
  return line;
}

const trim = (text) => text.replace(/^\p{White_Space}+|\p{White_Space}+$/gu, "");

/** A party's name as a label (Label::new): trimmed, at most 64 characters, nothing unsafe. */
function checkedName(name) {
  if ([...name].length > MAX_LABEL_CHARS) throw new Error(`a party's name is longer than ${MAX_LABEL_CHARS} characters`);
  const unsafe = name.match(UNSAFE);
  if (unsafe) {
    const code = unsafe[0].codePointAt(0).toString(16).toUpperCase().padStart(4, "0");
    throw new Error(`a party's name contains a control character (U+${code})`);
  }
  return name;
}

/** The seat a line names ({ key: hex, name? }), or null for a blank or comment line. */
function parseLine(line) {
  const content = trim(withoutComment(line));
  if (content === "") return null;
  const split = content.search(SPACE);
  const did = split < 0 ? content : content.slice(0, split);
  const name = split < 0 ? "" : trim(content.slice(split));
  const seat = { key: hex(keyOfDidKey(did)) };
  if (name !== "") seat.name = checkedName(name);
  return seat;
}

/** The seats of `text` in order (seats.rs parse_list); throws naming the line, or a key twice. */
export function parseSeatList(text) {
  const seats = [];
  text.split("\n").forEach((raw, index) => {
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    let seat;
    try {
      seat = parseLine(line);
    } catch (error) {
      throw new Error(`line ${index + 1}: ${error.message}`);
    }
    if (!seat) return;
    if (seats.some((earlier) => earlier.key === seat.key)) throw new Error(`${did(line)} is listed twice`);
    seats.push(seat);
  });
  return seats;
}

/** The did:key a line starts with, to name it. */
const did = (line) => trim(withoutComment(line)).split(SPACE)[0];
