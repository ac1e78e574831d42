// Two texts of a page side by side, the words only one of them has marked (<del> on the left, <ins> on the
// right), for the dialog of templates/labeling/workspace/_compare.html. The word diff is jsdiff's (vendored in
// static/vendor/diff, loaded as window.Diff). The texts are untrusted model outputs: they come from json_script
// and go into the page as text nodes only, never as HTML.

const TIMEOUT_MS = 1500; // past this jsdiff gives up and the texts are shown unmarked

let parts = null; // the dialog's elements, once found
let returnFocus = null; // what had the focus when the dialog opened

function items() {
  const data = document.getElementById("cmp-items");
  return new Map(JSON.parse(data?.textContent || "[]").map((item) => [String(item.key), item]));
}

function words(text) {
  return text.split(/\s+/).filter(Boolean).length;
}

// The changes between two texts, word by word; null when jsdiff is missing or gave up on them.
function wordChanges(left, right) {
  if (!window.Diff) return null;
  return window.Diff.diffWords(left, right, { timeout: TIMEOUT_MS }) || null;
}

// One side: the text shared with the other side as plain text, its own words inside `tag`.
function paint(pane, changes, own, other, tag) {
  const nodes = [];
  for (const change of changes) {
    if (change[other]) continue;
    if (change[own]) {
      const mark = document.createElement(tag);
      mark.textContent = change.value;
      nodes.push(mark);
    } else {
      nodes.push(document.createTextNode(change.value));
    }
  }
  pane.replaceChildren(...nodes);
}

function show() {
  const all = items();
  const left = all.get(parts.left.value);
  const right = all.get(parts.right.value);
  if (!left || !right) return;
  parts.leftTitle.textContent = left.label;
  parts.rightTitle.textContent = right.label;
  const changes = left.key === right.key ? null : wordChanges(left.text, right.text);
  if (!changes) {
    parts.leftText.textContent = left.text;
    parts.rightText.textContent = right.text;
    parts.summary.textContent =
      left.key === right.key
        ? `${left.label} on both sides: pick another output for one of them.`
        : "These two are too far apart to mark word by word in time: shown unmarked.";
    return;
  }
  paint(parts.leftText, changes, "removed", "added", "del");
  paint(parts.rightText, changes, "added", "removed", "ins");
  const only = (side) => changes.filter((c) => c[side]).reduce((n, c) => n + words(c.value), 0);
  const [onlyLeft, onlyRight] = [only("removed"), only("added")];
  parts.summary.textContent =
    onlyLeft + onlyRight === 0
      ? `${left.label} and ${right.label} have the same words.`
      : `${onlyLeft} ${onlyLeft === 1 ? "word" : "words"} only in ${left.label}, ` +
        `${onlyRight} ${onlyRight === 1 ? "word" : "words"} only in ${right.label}.`;
}

function setup() {
  const dialog = document.getElementById("cmp-dialog");
  if (!dialog) return null;
  if (parts) return parts;
  const byId = (id) => document.getElementById(id);
  parts = {
    dialog,
    left: byId("cmp-left"),
    right: byId("cmp-right"),
    leftTitle: byId("cmp-left-title"),
    rightTitle: byId("cmp-right-title"),
    leftText: byId("cmp-left-text"),
    rightText: byId("cmp-right-text"),
    summary: byId("cmp-summary"),
  };
  parts.left.addEventListener("change", show);
  parts.right.addEventListener("change", show);
  byId("cmp-swap").addEventListener("click", () => {
    [parts.left.value, parts.right.value] = [parts.right.value, parts.left.value];
    show();
  });
  byId("cmp-close").addEventListener("click", () => dialog.close());
  // The page's own shortcuts (letters, digits, Enter, S) must not act behind the open dialog.
  // Esc closes it here, at once, rather than through the browser's close request (a task later): a key
  // pressed right after Esc then reaches the page with the focus already handed back.
  dialog.addEventListener("keydown", (event) => {
    if (!dialog.open) return; // focus can linger on a closed dialog's button until the browser moves it
    event.stopPropagation();
    if (event.key === "Escape") {
      event.preventDefault();
      dialog.close();
    }
  });
  // Hand the focus back at once, to where it was when the dialog opened (the browser may do it a task later).
  dialog.addEventListener("close", () => {
    if (!dialog.contains(document.activeElement)) return;
    if (returnFocus?.isConnected && returnFocus !== document.body) returnFocus.focus();
    else document.activeElement.blur();
  });
  for (const button of document.querySelectorAll("[data-compare-open]")) {
    button.addEventListener("click", () => openCompare(button.dataset.compareLeft, button.dataset.compareRight));
  }
  return parts;
}

// Opens the dialog on two items (keys); without keys, on the two shown last, or the first two.
export function openCompare(leftKey, rightKey) {
  if (!setup()) return;
  const keys = [...items().keys()];
  if (leftKey !== undefined && keys.includes(String(leftKey))) parts.left.value = String(leftKey);
  if (rightKey !== undefined && keys.includes(String(rightKey))) parts.right.value = String(rightKey);
  if (parts.left.value === parts.right.value && keys.length > 1) {
    parts.right.value = keys[(keys.indexOf(parts.left.value) + 1) % keys.length];
  }
  show();
  if (!parts.dialog.open) {
    returnFocus = document.activeElement;
    parts.dialog.showModal();
  }
  parts.left.focus();
}

export function isCompareOpen() {
  return Boolean(parts?.dialog.open);
}

setup();
