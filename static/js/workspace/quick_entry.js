// Typing a whole ranking in one go, in the ranking page's own field: the outputs best first ("ba=dc", where
// "=" ties an output with the one typed before it), then a quality score for each in the same order ("7531"),
// then Enter. With "/" to reach the field and Enter again to submit, a K=4 ranking with every score takes
// 12 key presses instead of 17 (docs/keyboard.md). Spaces, commas and ">" may be typed for readability.
// Written here rather than taken from a library: the grammar is ours and fits in one small function.

const SCORE_MIN = 1;
const SCORE_MAX = 7;
const IGNORED = /[\s,>]/;

function letterRange(letters) {
  return `${letters[0].toUpperCase()} to ${letters[letters.length - 1].toUpperCase()}`;
}

function ordinal(n) {
  return ["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth"][n - 1] || `#${n}`;
}

// `letters`: this page's output letters, in order ("abcd"). Returns {tiers: [["B"], ["A", "D"], ["C"]],
// scores: [["B", 7], ...], typed: ["B", "A", "D", "C"]} or {error} naming the character at fault.
export function parseEntry(text, letters) {
  const known = new Set([...letters].map((l) => l.toUpperCase()));
  const tiers = [];
  const typed = [];
  const scores = [];
  let tieNext = false;
  for (const char of text) {
    if (IGNORED.test(char)) continue;
    const upper = char.toUpperCase();
    if (/^[0-9]$/.test(char)) {
      if (tieNext) return { error: `"=" needs an output after it, before the scores.` };
      if (!typed.length) return { error: "Type the outputs first, best first, then their scores." };
      const score = Number(char);
      if (score < SCORE_MIN || score > SCORE_MAX) {
        return { error: `Scores run from ${SCORE_MIN} to ${SCORE_MAX}: the ${ordinal(scores.length + 1)} score is ${char}.` };
      }
      if (scores.length === typed.length) {
        return { error: `${scores.length + 1} scores for ${typed.length} outputs: one score per output, in the order typed.` };
      }
      scores.push([typed[scores.length], score]);
    } else if (char === "=") {
      if (scores.length) return { error: `"=" after a score: type the whole ranking first, then the scores.` };
      if (!typed.length) return { error: `"=" ties an output with the one before it: type an output first.` };
      if (tieNext) return { error: `"==": type an output between two "=".` };
      tieNext = true;
    } else if (known.has(upper)) {
      if (scores.length) return { error: `"${upper}" after a score: type the whole ranking first, then the scores.` };
      if (typed.includes(upper)) return { error: `${upper} is typed twice: each output goes in the ranking once.` };
      if (tieNext) tiers[tiers.length - 1].push(upper);
      else tiers.push([upper]);
      typed.push(upper);
      tieNext = false;
    } else if (/^\p{L}$/u.test(char)) {
      return { error: `There is no output ${upper} here: the outputs are ${letterRange(letters)}.` };
    } else {
      return { error: `"${char}" means nothing here: type output letters, "=" for a tie, then scores ${SCORE_MIN}–${SCORE_MAX}.` };
    }
  }
  if (tieNext) return { error: `"=" needs an output after it.` };
  return { tiers, scores, typed };
}

// What an entry will do, in words, for the line under the field and for screen readers.
export function describeEntry(entry) {
  const order = entry.tiers.map((tier) => tier.join(" = ")).join(", then ");
  const scores = entry.scores.map(([letter, score]) => `${letter} ${score}`).join(", ");
  return `${order}${scores ? `; scores ${scores}` : ""}`;
}

// Wires the field: "/" (from anywhere but a text box) reaches it, each key shows what Enter will do, Enter
// applies it through `apply(entry)` (which says whether the ranking is now complete), Escape leaves it.
export function setupQuickEntry({ letters, apply, isBlocked }) {
  const input = document.getElementById("rk-quick-input");
  const preview = document.getElementById("rk-quick-preview");
  const error = document.getElementById("rk-quick-error");
  let returnTo = null;

  function showError(message) {
    error.textContent = message;
    error.hidden = !message;
    input.setAttribute("aria-invalid", String(Boolean(message)));
  }

  input.addEventListener("input", () => {
    const entry = parseEntry(input.value, letters);
    preview.textContent = entry.error || !entry.typed.length ? "" : `Enter will rank: ${describeEntry(entry)}`;
    if (!entry.error) showError("");
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      event.preventDefault();
      if (returnTo && returnTo !== document.body && returnTo.isConnected) returnTo.focus();
      else input.blur();
      return;
    }
    if (event.key !== "Enter" || event.ctrlKey || event.metaKey) return;
    event.preventDefault(); // not the form's implicit submission: Enter applies what was typed
    const entry = parseEntry(input.value, letters);
    if (!entry.error && !entry.typed.length) entry.error = "Type the outputs best first, for example “ba=dc”.";
    if (entry.error) {
      showError(entry.error);
      return;
    }
    showError("");
    input.value = "";
    preview.textContent = apply(entry) || "";
  });
  document.addEventListener("keydown", (event) => {
    if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey || isBlocked(event)) return;
    event.preventDefault();
    returnTo = document.activeElement;
    input.focus();
  });
  return { input };
}
