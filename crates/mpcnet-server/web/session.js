// The live session page: who joined, fingerprints, seal, program, and once running each
// party's state and each link's path and RTT, pushed by the server as they change. Opened
// from an invite (or the creator link), it also shows the command that joins from a terminal.

import { copyButton, el, fill, lobbyIdOfPage } from "./page.js";
import { creatorCommand, inviteFromFragment, linksFromCreatorFragment, runCommand } from "./protocol.js";
import { followSession, isCreatorOf, showLinks, showParties, showPhase } from "./live.js";

/** The command this page's link lets its reader run: the creator's, a party's, or none. */
async function showCommand(lobbyId) {
  const fragment = location.hash.slice(1);
  creatorLinks = await linksFromCreatorFragment(location.origin, lobbyId, fragment);
  const invite = await inviteFromFragment(location.origin, lobbyId, fragment);
  if (creatorLinks) {
    fill("command-intro", "You created this session. On the machine where your party runs:");
    fill("run-command", creatorCommand(creatorLinks.creatorLink));
  } else if (invite) {
    fill("command-intro", "To join from a terminal (mpcnet joins, waits for the others, then runs the program):");
    fill("run-command", runCommand(invite));
  } else {
    if (fragment) {
      fill("gone", "This link's invite is damaged: ask for it again. The session is shown below.");
      document.getElementById("gone").hidden = false;
    }
    document.getElementById("command").hidden = true;
    return;
  }
  copyButton("copy-run-command", "run-command");
  if (latestView) checkCreatorLink(latestView);
}

/** What this page has seen happen, in order, with the time it saw it. */
const seen = new Set();

function noteMilestones(view) {
  const milestones = [];
  if (view.parties.length === view.parties_expected) milestones.push(["full", "every party joined"]);
  if (view.session_fingerprint) milestones.push(["sealed", `sealed, fingerprint ${view.session_fingerprint}`]);
  if (view.parties.some((party) => party.run)) milestones.push(["running", "the parties started their runs"]);
  if (view.phase === "finished") milestones.push(["finished", "every party finished"]);
  if (view.phase === "failed") milestones.push(["failed", "a party's run failed"]);
  for (const [key, text] of milestones) {
    if (seen.has(key)) continue;
    seen.add(key);
    document.getElementById("timeline").append(
      el("li", { "data-milestone": key }, el("time", {}, new Date().toLocaleTimeString()), ` ${text}`));
  }
}

/** The links of this page's creator link, if it is one: checked against each view. */
let creatorLinks = null;
/** The latest view shown, to check a creator link read after it came. */
let latestView = null;

/** Takes back the creator's command if the session's creator has another key than the link's. */
function checkCreatorLink(view) {
  if (!creatorLinks || isCreatorOf(creatorLinks, view)) return;
  document.getElementById("command").hidden = true;
  fill("gone", "This link does not hold the key of the session's creator: it is no creator link of this session.");
  document.getElementById("gone").hidden = false;
}

/** An asymmetric program's roles: which seats run which entry point of the bundle, with what. */
function showRoles(roles, parties) {
  const covered = roles.reduce((count, role) => count + role.seats.length, 0);
  for (const id of ["roles-term", "roles"]) document.getElementById(id).hidden = roles.length === 0;
  fill("roles", ...roles.map((role) => el("div", { class: "role" },
    `seats ${role.seats.join(", ")} run `, el("code", {}, role.main),
    role.args ? ` with ${role.args.length ? role.args.join(" ") : "no arguments"}` : "",
  )), covered && covered < parties ? "the other seats run the bundle's entry point" : "");
}

function showView(view) {
  latestView = view;
  checkCreatorLink(view);
  noteMilestones(view);
  document.title = `${view.name} · mpcnet`;
  fill("session-name", view.name);
  showPhase("phase", view);
  fill("fingerprint", view.session_fingerprint ?? "not sealed yet");
  fill("program",
    el("code", {}, view.program.file_name), ` (${view.program.size} bytes), SHA-256 `, el("code", {}, view.program.sha256));
  fill("args", ...(view.args.length ? view.args.map((arg) => el("code", { class: "arg" }, arg)) : ["(none)"]));
  showRoles(view.roles ?? [], view.parties_expected);
  fill("joined", `${view.parties.length} of ${view.parties_expected}`);
  fill("access", view.seats?.length ? "only the parties listed below, by key" : "anyone holding the invite");
  fill("expires", new Date(view.expires_at * 1000).toLocaleString());
  showParties("parties", view);
  showLinks("links", view);
}

const lobbyId = lobbyIdOfPage();
showCommand(lobbyId).catch((error) => fill("command-intro", `Cannot read this link: ${error.message}`));
followSession(lobbyId, showView, (reason) => {
  fill("gone", `This session is gone: ${reason}`);
  document.getElementById("gone").hidden = false;
});
