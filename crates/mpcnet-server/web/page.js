// What every page shares: building DOM nodes (text only: user strings are never parsed as
// HTML), copy buttons, and the server's JSON errors.

// The pages read their link's fragment once: another fragment is another page.
addEventListener("hashchange", () => location.reload());

/** A new element with text content and attributes; children may be nodes or strings. */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  for (const child of children) node.append(child);
  return node;
}

/** Fills the element with id `id` with `children`, replacing what it had. */
export function fill(id, ...children) {
  document.getElementById(id).replaceChildren(...children);
}

/** Makes button `buttonId` copy the text of element `sourceId`, and say so. */
export function copyButton(buttonId, sourceId) {
  const button = document.getElementById(buttonId);
  button.addEventListener("click", async () => {
    const text = document.getElementById(sourceId).textContent;
    try {
      await navigator.clipboard.writeText(text);
      button.textContent = "Copied";
    } catch {
      const range = document.createRange();
      range.selectNodeContents(document.getElementById(sourceId));
      getSelection().removeAllRanges();
      getSelection().addRange(range);
      button.textContent = "Selected: press Ctrl+C";
    }
    setTimeout(() => (button.textContent = "Copy"), 2000);
  });
}

/** The body of a failed API answer as one line for a person. */
export async function apiError(response) {
  try {
    const body = await response.json();
    return `${body.message} (${body.code})`;
  } catch {
    return `the server answered ${response.status}`;
  }
}

/** The lobby id in this page's path (/s/ID or /s/ID/share). */
export const lobbyIdOfPage = () => location.pathname.split("/")[2];
