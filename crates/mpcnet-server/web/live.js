// Following a session as it changes: the server pushes a view on every change (Server-Sent
// Events), and this renders it. No polling: the browser holds one event stream open.

import { el, fill } from "./page.js";

const PHASE_TEXT = {
  open: "waiting for parties",
  full: "full: waiting for the creator's seal",
  sealed: "sealed",
  running: "running",
  finished: "finished",
  failed: "failed",
};

/** Calls `onView(view)` with the session now and after every change; `onGone(reason)` at the end. */
export function followSession(lobbyId, onView, onGone) {
  const events = new EventSource(`/v1/lobbies/${lobbyId}/events`);
  events.addEventListener("view", (event) => onView(JSON.parse(event.data)));
  events.addEventListener("gone", (event) => {
    events.close();
    onGone(event.data);
  });
  events.addEventListener("error", () => {
    if (events.readyState === EventSource.CLOSED) onGone("the server closed the live updates; reload the page");
  });
}

/** Whether `links` (from a creator link) belong to the creator of the session in `view`. */
export const isCreatorOf = (links, view) => view.parties[0]?.key === links.creatorKey;

/** Shows the phase in the element `id` (text and a data attribute for styling and tests). */
export function showPhase(id, view) {
  const badge = document.getElementById(id);
  badge.textContent = PHASE_TEXT[view.phase] ?? view.phase;
  badge.dataset.phase = view.phase;
}

function runText(run) {
  if (!run) return "not started";
  switch (run.kind) {
    case "finished":
      return run.exit_code === 0 ? "finished" : `finished with exit code ${run.exit_code}`;
    case "failed":
      return `failed: ${run.reason}`;
    default:
      return run.kind;
  }
}

/** The row of a seat nobody has taken yet: in a named session, who it waits for. */
function freeSeatRow(seat, listed) {
  if (!listed) {
    return el("tr", { "data-seat": seat, class: "missing" }, el("td", {}, String(seat)), el("td", { colspan: "3" }, "not joined yet"));
  }
  return el("tr", { "data-seat": seat, class: "missing" },
    el("td", {}, String(seat)),
    el("td", { class: "party-name" }, listed.name ?? "", el("span", { class: "tag" }, "listed")),
    el("td", {}, el("code", {}, listed.fingerprint)),
    el("td", {}, "not joined yet"),
  );
}

/** Renders the parties: one row per seat, joined or not (a named session's seats may be taken in any order). */
export function showParties(id, view) {
  const rows = [];
  for (let seat = 0; seat < view.parties_expected; seat += 1) {
    const party = view.parties.find((joined) => joined.index === seat);
    const listed = view.seats?.[seat];
    if (!party) {
      rows.push(freeSeatRow(seat, listed));
      continue;
    }
    const listedAs = listed?.name && listed.name !== party.name ? el("span", { class: "tag" }, `listed as ${listed.name}`) : "";
    rows.push(
      el("tr", { "data-seat": seat, "data-run": party.run?.kind ?? "none" },
        el("td", {}, String(party.index)),
        el("td", { class: "party-name" }, party.name, party.creator ? el("span", { class: "tag" }, "creator") : "", listedAs, identityLine(party.identity)),
        el("td", {}, el("code", {}, party.fingerprint)),
        el("td", {}, runText(party.run)),
      ),
    );
  }
  fill(id, ...rows);
}

/** The account a party's identity proof shows, as the server checked its claims. */
function identityLine(identity) {
  if (!identity) return "";
  const title = "claims checked by the server; every party's mpcnet checks the issuer's signature itself";
  return el("div", { class: "identity", title }, `${identity.email ?? identity.subject} (${identity.issuer})`);
}

/** Renders the links between parties, as their agents report them. */
export function showLinks(id, view) {
  const name = (index) => view.parties.find((party) => party.index === index)?.name ?? `party ${index}`;
  const rows = view.links.map((link) =>
    el("tr", { "data-link": link.parties.join("-"), "data-path": link.path },
      el("td", {}, `${link.parties[0]} ${name(link.parties[0])}`),
      el("td", {}, `${link.parties[1]} ${name(link.parties[1])}`),
      el("td", {}, link.unreachable_s == null ? link.path : `unreachable for ${link.unreachable_s} s`),
      el("td", {}, link.rtt_ms == null ? "–" : `${link.rtt_ms.toFixed(1)} ms`),
    ));
  if (rows.length === 0) rows.push(el("tr", {}, el("td", { colspan: "4" }, "no links reported yet")));
  fill(id, ...rows);
}
