// The invite page, the creator's after creating: the invite to share (link, QR code, copy
// button), the creator's own command, and how full the session is. Everything secret comes
// from this page's URL fragment, which the browser never sends.

import { copyButton, el, fill, lobbyIdOfPage } from "./page.js";
import { creatorCommand, linksFromCreatorFragment, runCommand } from "./protocol.js";
import { followSession, isCreatorOf, showPhase } from "./live.js";
import { encode } from "./vendor/uqr.mjs";

/** Draws `text` as a QR code (SVG, one path of dark modules) into the element `id`. */
function drawQr(id, text) {
  const { data, size } = encode(text, { ecc: "M", border: 4 });
  const svgNs = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(svgNs, "svg");
  svg.setAttribute("viewBox", `0 0 ${size} ${size}`);
  svg.setAttribute("shape-rendering", "crispEdges");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", "QR code of the invite link");
  const background = document.createElementNS(svgNs, "rect");
  background.setAttribute("width", size);
  background.setAttribute("height", size);
  background.setAttribute("fill", "#fff");
  let d = "";
  data.forEach((row, y) => row.forEach((dark, x) => { if (dark) d += `M${x} ${y}h1v1h-1z`; }));
  const modules = document.createElementNS(svgNs, "path");
  modules.setAttribute("d", d);
  modules.setAttribute("fill", "#000");
  svg.append(background, modules);
  fill(id, svg);
}

async function main() {
  const lobbyId = lobbyIdOfPage();
  const links = await linksFromCreatorFragment(location.origin, lobbyId, location.hash.slice(1));
  if (!links) {
    fill("share-error", "This page's link is not a creator link of this session: open the link the create page gave you.");
    return;
  }
  fill("invite-link", links.invite);
  fill("invite-command", runCommand(links.invite));
  fill("creator-command", creatorCommand(links.creatorLink));
  drawQr("qr", links.invite);
  copyButton("copy-invite", "invite-link");
  copyButton("copy-invite-command", "invite-command");
  copyButton("copy-creator-command", "creator-command");
  document.getElementById("live-link").href = `/s/${lobbyId}#${links.creatorLink.split("#")[1]}`;
  followSession(
    lobbyId,
    (view) => {
      if (!isCreatorOf(links, view)) {
        document.querySelector("main").replaceChildren(
          el("h1", {}, "Not this session's creator link"),
          el("p", { class: "error" }, "This link does not hold the key of the session's creator: open the link the create page gave you."),
        );
        return;
      }
      fill("session-name", view.name);
      showPhase("phase", view);
      fill("joined", `${view.parties.length} of ${view.parties_expected} parties joined`);
      if (view.seats?.length) {
        fill("invite-holders", "Only the parties you listed can take a seat with it, each with its own key; still, send it only to them (scanning the QR code gives the same link).");
      }
    },
    (reason) => fill("share-error", reason),
  );
}

main().catch((error) => fill("share-error", `This page failed: ${error.message}`));
