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

/** The server's example programs, by name, as its catalog lists them. */
const examples = new Map();

async function listExamples() {
  const response = await fetch("/v1/examples");
  if (!response.ok) return;
  const select = document.getElementById("example");
  for (const example of (await response.json()).examples) {
    examples.set(example.name, example);
    const option = document.createElement("option");
    option.value = example.name;
    option.textContent = `${example.name}: ${example.summary}`;
    select.append(option);
  }
}

/** The chosen program's file name, bytes, entry point (a bundle's only) and roles (an
 * asymmetric bundle's): the catalog's example (checked against the catalog's SHA-256), or the
 * file or bundle the creator picked; null when there is neither. */
async function chosenProgram(data) {
  const example = examples.get(String(data.get("example")));
  if (example) {
    const response = await fetch(`/v1/examples/${encodeURIComponent(example.name)}`);
    if (!response.ok) throw new Error(await apiError(response));
    const bytes = new Uint8Array(await response.arrayBuffer());
    if (hex(await sha256(bytes)) !== example.sha256) {
      throw new Error(`the example ${example.name} does not match the catalog's SHA-256`);
    }
    return { name: example.file_name, bytes, main: example.main ?? null, roles: example.roles ?? [] };
  }
  const file = data.get("program");
  if (!(file instanceof File) || file.size === 0) return null;
  // A bundle (`mpcnet pack DIR`) is named after its folder and runs its entry point.
  const bundle = file.name.endsWith(".tar");
  const main = String(data.get("main") ?? "").trim();
  if (bundle && !main) throw new Error("Name the bundle's entry point, e.g. survey.py.");
  if (!bundle && main) throw new Error("An entry point is for a bundle only (a .tar made by mpcnet pack).");
  const name = bundle ? file.name.slice(0, -".tar".length) : file.name;
  return { name, bytes: new Uint8Array(await file.arrayBuffer()), main: bundle ? main : null };
}

async function createSession(event) {
  event.preventDefault();
  const data = new FormData(form);
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  say("Creating the session…");
  try {
    const chosen = await chosenProgram(data);
    if (!chosen) throw new Error("choose an example or your own program file");
    const program = chosen.bytes;
    const info = await (await fetch("/v1/info")).json();
    const pin = info.certificate ? await sha256(fromBase64url(info.certificate)) : null;
    if (program.length > info.max_program_bytes) {
      throw new Error(`the program has ${program.length} bytes; this server takes at most ${info.max_program_bytes}`);
    }
    const secret = randomBytes(32);
    const joinKey = await joinKeyOf(secret);
    const creator = await keyFromSeed(randomBytes(32));
    const lobbyId = await lobbyIdOf(joinKey.publicKey);
    const seats = namedSeats(String(data.get("seats") ?? ""), creator);
    const parties = seats.length || Number(data.get("parties"));
    const offer = {
      lobby_id: lobbyId,
      name: String(data.get("name")).trim() || chosen.name,
      parties,
      creator: hex(creator.publicKey),
      join_key: hex(joinKey.publicKey),
      program: {
        file_name: chosen.name, sha256: hex(await sha256(program)), size: program.length,
        ...(chosen.main ? { main: chosen.main } : {}),
      },
      args: argumentLines(String(data.get("args"))),
      relay_url: new URL("/", location.origin).href,
    };
    // Absent for an open session, so its offer is the same bytes as before seats existed.
    if (seats.length) offer.seats = seats;
    // Absent without roles, likewise: an asymmetric example's seats and their entry points.
    if (chosen.roles?.length) offer.roles = chosen.roles;
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
listExamples();
