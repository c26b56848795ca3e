// The create page: the browser makes the session's keys, signs the offer and the creator's
// join, and uploads them with the program. The join secret and the creator's key never leave
// the browser: they go into the URL fragment of the next page, which is never sent.

import { apiError, fill } from "./page.js";
import {
  base64url, fromBase64url, hex, joinKeyOf, keyFromSeed, lobbyIdOf, PURPOSE, randomBytes,
  sessionLinks, sha256, signedJoin, signJson,
} from "./protocol.js";
import { parseSeatList } from "./seats.js";

const form = document.getElementById("create-form");
const say = (text) => fill("create-status", text);

/**
 * The named seats of the list typed in the form, the creator's (this browser's fresh key)
 * first, or none if nothing is listed (a session open to anyone holding the invite).
 */
function namedSeats(text, creator) {
  if (text.trim() === "") return [];
  const others = parseSeatList(text);
  if (others.length === 0) throw new Error("the list of parties names no one");
  if (others.length + 1 > 64) throw new Error(`${others.length + 1} parties are listed, you included; a session has at most 64`);
  return [{ key: hex(creator.publicKey) }, ...others];
}

/** Public arguments as typed: one per line, exactly as given (no shell quoting to guess at). */
const argumentLines = (text) => text.split(/\r?\n/).filter((line) => line !== "");

async function createSession(event) {
  event.preventDefault();
  const data = new FormData(form);
  const file = data.get("program");
  if (!(file instanceof File) || file.size === 0) return say("Choose the program file.");
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  say("Creating the session…");
  try {
    const info = await (await fetch("/v1/info")).json();
    const pin = info.certificate ? await sha256(fromBase64url(info.certificate)) : null;
    if (file.size > info.max_program_bytes) {
      throw new Error(`the program has ${file.size} bytes; this server takes at most ${info.max_program_bytes}`);
    }
    const program = new Uint8Array(await file.arrayBuffer());
    const secret = randomBytes(32);
    const joinKey = await joinKeyOf(secret);
    const creator = await keyFromSeed(randomBytes(32));
    const lobbyId = await lobbyIdOf(joinKey.publicKey);
    const seats = namedSeats(String(data.get("seats") ?? ""), creator);
    const parties = seats.length || Number(data.get("parties"));
    const offer = {
      lobby_id: lobbyId,
      name: String(data.get("name")).trim() || file.name,
      parties,
      creator: hex(creator.publicKey),
      join_key: hex(joinKey.publicKey),
      program: { file_name: file.name, sha256: hex(await sha256(program)), size: program.length },
      args: argumentLines(String(data.get("args"))),
      relay_url: new URL("/", location.origin).href,
    };
    // Absent for an open session, so its offer is the same bytes as before seats existed.
    if (seats.length) offer.seats = seats;
    const signedOffer = await signJson(offer, creator, PURPOSE.offer);
    const creatorName = String(data.get("party-name")).trim();
    const creatorJoin = await signedJoin(creator, creatorName, joinKey, lobbyId, signedOffer.payload);
    const response = await fetch("/v1/lobbies", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ offer: signedOffer.signed, creator_join: creatorJoin, program: base64url(program) }),
    });
    if (!response.ok) throw new Error(await apiError(response));
    const { creatorLink } = await sessionLinks(location.origin, lobbyId, creator, secret, pin);
    location.assign(`/s/${lobbyId}/share#${creatorLink.split("#")[1]}`);
  } catch (error) {
    say(`Could not create the session: ${error.message}`);
    button.disabled = false;
  }
}

form.addEventListener("submit", createSession);
