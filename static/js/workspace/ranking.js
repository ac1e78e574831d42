// The ranking page. The ranking is held as {pool: [ids not placed], tiers: [[best ids], [next], ...]};
// drag and drop (SortableJS) and the keyboard both change that state, and render() redraws the tiers
// from it by moving the existing card elements (no HTML is built from output text).
import {
  createDraftSaver, csrfToken, hasModifier, isTyping, latestDraft, lockOnSubmit, noFormStateRestore, readConfig,
  setupCommonKeys, setupSkipDialog, startTimer,
} from "./common.js";
import { openCompare, isCompareOpen } from "./compare.js";
import { describeEntry, setupQuickEntry } from "./quick_entry.js";
import { makeSortable } from "./ranking_drop.js";

const config = readConfig();
const form = document.getElementById("ws-form");
const ids = config.completions.map((c) => c.id);
const letterOf = new Map(config.completions.map((c) => [c.id, c.letter]));
const idOfLetter = new Map(config.completions.map((c) => [c.letter.toLowerCase(), c.id]));
const chips = new Map([...document.querySelectorAll(".rk-chip")].map((el) => [Number(el.dataset.id), el]));
const poolEl = document.getElementById("rk-pool");
const tiersEl = document.getElementById("rk-tiers");
const errorsEl = document.getElementById("rk-errors");
const announceEl = document.getElementById("rk-announce");
const allUnusable = document.getElementById("id_all_unusable");

let state = { pool: [...ids], tiers: [] };
let undoSortable = () => {};

// ---- state -------------------------------------------------------------------------------------

// Every completion exactly once: in a non-empty tier, or else in the pool (kept in display order).
function normalise(next) {
  const seen = new Set();
  const tiers = [];
  for (const tier of next.tiers || []) {
    const clean = (Array.isArray(tier) ? tier : []).map(Number).filter((id) => chips.has(id) && !seen.has(id));
    clean.forEach((id) => seen.add(id));
    if (clean.length) tiers.push(clean);
  }
  return { pool: ids.filter((id) => !seen.has(id)), tiers };
}

function tierOf(id) {
  return state.tiers.findIndex((tier) => tier.includes(id));
}

// A copy without `id`, leaving empty tiers in place so tier indexes stay meaningful until normalise().
function without(id) {
  return { pool: state.pool.filter((x) => x !== id), tiers: state.tiers.map((tier) => tier.filter((x) => x !== id)) };
}

const ops = {
  // Into tier n (1-based), joining the cards already there; past the last tier: a new last tier.
  place(id, n) {
    const next = without(id);
    if (n - 1 < next.tiers.length) next.tiers[n - 1].push(id);
    else next.tiers.push([id]);
    return next;
  },
  up(id) {
    const i = tierOf(id);
    if (i === -1) return ops.place(id, state.tiers.length + 1);
    const next = without(id);
    if (state.tiers[i].length > 1) next.tiers.splice(i, 0, [id]); // out of the tie, just above it
    else if (i > 0) [next.tiers[i - 1], next.tiers[i]] = [[id], state.tiers[i - 1]];
    else next.tiers[i] = [id];
    return next;
  },
  down(id) {
    const i = tierOf(id);
    if (i === -1) return ops.place(id, state.tiers.length + 1);
    const next = without(id);
    if (state.tiers[i].length > 1) next.tiers.splice(i + 1, 0, [id]); // out of the tie, just below it
    else if (i < state.tiers.length - 1) [next.tiers[i], next.tiers[i + 1]] = [state.tiers[i + 1], [id]];
    else next.tiers[i] = [id];
    return next;
  },
  // Same tier as the one above (for a card not placed yet: tied with the lowest tier).
  tie(id) {
    const i = tierOf(id);
    const next = without(id);
    if (i === -1) {
      if (next.tiers.length) next.tiers[next.tiers.length - 1].push(id);
      else next.tiers.push([id]);
    } else if (i === 0) {
      next.tiers[0].push(id);
    } else {
      next.tiers[i - 1].push(id);
    }
    return next;
  },
  unplace(id) {
    return without(id);
  },
};

// ---- drawing -----------------------------------------------------------------------------------

function zone(kind, index, extraClass) {
  const list = document.createElement("ol");
  list.className = `rk-zone ${extraClass}`;
  list.dataset.kind = kind;
  list.dataset.index = String(index);
  return list;
}

function tierElement(index, tier) {
  const row = document.createElement("div");
  row.className = "rk-tier";
  row.setAttribute("role", "group");
  const label = document.createElement("div");
  label.className = "rk-tier-label";
  label.textContent = String(index + 1);
  if (index === 0) label.title = "best";
  row.setAttribute("aria-label", `Tier ${index + 1}${index === 0 ? ", best" : ""}${tier.length > 1 ? ", tied" : ""}`);
  const list = zone("tier", index, "rk-tier-cards");
  for (const id of tier) list.append(chips.get(id));
  row.append(label, list);
  return row;
}

function gapElement(index, isLast) {
  const gap = zone("gap", index, isLast ? "rk-gap rk-new-tier" : "rk-gap");
  gap.setAttribute("aria-hidden", "true");
  if (isLast) {
    gap.dataset.hint = index === 0 ? "Drop the best output here" : "Drop here for a new, lower tier";
  }
  return gap;
}

function describe(id) {
  const i = tierOf(id);
  if (i === -1) return `Output ${letterOf.get(id)}: not placed`;
  const mates = state.tiers[i].filter((x) => x !== id).map((x) => letterOf.get(x));
  const tie = mates.length ? `, tied with ${mates.join(", ")}` : "";
  return `Output ${letterOf.get(id)}: tier ${i + 1} of ${state.tiers.length}${tie}`;
}

function render() {
  const focused = document.activeElement?.closest?.(".rk-chip");
  undoSortable();
  poolEl.replaceChildren(...state.pool.map((id) => chips.get(id)));
  const parts = [];
  state.tiers.forEach((tier, i) => parts.push(gapElement(i, false), tierElement(i, tier)));
  parts.push(gapElement(state.tiers.length, true));
  tiersEl.replaceChildren(...parts);
  for (const [id, chip] of chips) {
    chip.setAttribute("aria-label", describe(id));
    const rank = document.getElementById(`rank-of-${id}`);
    const i = tierOf(id);
    rank.textContent = i === -1 ? "not ranked" : `tier ${i + 1} of ${state.tiers.length}`;
    rank.classList.toggle("is-ranked", i !== -1);
  }
  const placed = ids.length - state.pool.length;
  document.getElementById("rk-placed-count").textContent = `${placed} of ${ids.length} placed`;
  document.getElementById("rk-pool-box").classList.toggle("is-empty", state.pool.length === 0);
  document.getElementById("rk-tiers-input").value = JSON.stringify(state.tiers);
  undoSortable = makeSortable({ tiersEl, onDrop });
  if (focused) focused.focus();
}

// Where a dragged card was let go (ranking_drop.js): a tier's row ties it there, a gap starts a tier there, the
// pool takes it out; outside them all, the order Sortable left in the DOM stands.
function onDrop(id, zone) {
  if (zone?.kind === "tier") return change(ops.place(id, zone.index + 1), id);
  if (zone?.kind === "pool") return change(ops.unplace(id), id);
  if (zone?.kind === "gap") {
    const next = without(id);
    next.tiers.splice(zone.index, 0, [id]);
    return change(next, id);
  }
  return change(readDom(), id);
}

// Every non-empty zone under the tiers, top to bottom, is a tier (a card dropped in a gap starts one).
function readDom() {
  const tiers = [];
  for (const list of tiersEl.querySelectorAll(".rk-zone")) {
    const tier = [...list.querySelectorAll(".rk-chip")].map((el) => Number(el.dataset.id));
    if (tier.length) tiers.push(tier);
  }
  return { tiers };
}

function change(next, id) {
  state = normalise(next);
  render();
  if (id !== undefined) announceEl.textContent = describe(id);
  refreshProblems();
  saver.schedule();
}

// ---- ratings -----------------------------------------------------------------------------------

function updateMeta(id) {
  const meta = document.querySelector(`.rk-chip-meta[data-id="${id}"]`);
  const likert = form.querySelector(`input[name="likert-${id}"]:checked`);
  const flagged = form.querySelectorAll(`input[name="flag-${id}"]:checked`).length;
  meta.textContent = [likert ? `★${likert.value}` : "", flagged ? `⚑${flagged}` : ""].filter(Boolean).join(" ");
  const count = document.querySelector(`.rk-flag-count[data-id="${id}"]`);
  count.textContent = flagged ? `${flagged} set` : "none set";
  count.classList.toggle("is-set", flagged > 0);
}

function collect() {
  const likert = {};
  const flags = {};
  for (const id of ids) {
    const checked = form.querySelector(`input[name="likert-${id}"]:checked`);
    if (checked) likert[id] = checked.value;
    const set = [...form.querySelectorAll(`input[name="flag-${id}"]:checked`)].map((el) => el.value);
    if (set.length) flags[id] = set;
  }
  return {
    likert, flags, tiers: state.tiers, comment: form.elements.comment.value, all_unusable: allUnusable.checked,
  };
}

function restore(draft) {
  for (const [id, value] of Object.entries(draft.likert || {})) {
    const radio = form.querySelector(`input[name="likert-${Number(id)}"][value="${Number(value)}"]`);
    if (radio) radio.checked = true;
  }
  for (const [id, keys] of Object.entries(draft.flags || {})) {
    for (const box of form.querySelectorAll(`input[name="flag-${Number(id)}"]`)) box.checked = keys.includes(box.value);
  }
  if (typeof draft.comment === "string") form.elements.comment.value = draft.comment;
  allUnusable.checked = Boolean(draft.all_unusable);
  state = normalise({ tiers: draft.tiers || [] });
}

// ---- long outputs ------------------------------------------------------------------------------

function setupExpanders() {
  for (const button of document.querySelectorAll(".rk-expand")) {
    const text = document.getElementById(button.getAttribute("aria-controls"));
    if (text.scrollHeight <= text.clientHeight + 4) {
      text.classList.remove("is-clamped");
      continue;
    }
    button.hidden = false;
    button.addEventListener("click", () => {
      const expanded = text.classList.toggle("is-clamped") === false;
      button.setAttribute("aria-expanded", String(expanded));
      button.textContent = expanded ? "Show less" : "Show all";
    });
  }
}

// ---- the whole ranking typed in one go (quick_entry.js) --------------------------------------------

// The typed outputs become the ranking (any not typed go back to be placed) and each typed score is set;
// complete, the focus goes to Submit, so the next Enter sends it. Returns what the field shows.
function applyEntry(entry) {
  const idOf = (letter) => idOfLetter.get(letter.toLowerCase());
  state = normalise({ tiers: entry.tiers.map((tier) => tier.map(idOf)) });
  for (const [letter, score] of entry.scores) {
    form.querySelector(`input[name="likert-${idOf(letter)}"][value="${score}"]`).checked = true;
  }
  for (const id of ids) updateMeta(id);
  render();
  saver.schedule();
  const left = problems();
  const done = `Ranked ${describeEntry(entry)}.`;
  if (left.length) {
    showProblems(left);
    announceEl.textContent = `${done} ${left.map((p) => p.text).join(" ")}`;
    return `${done} Still to do: see above.`;
  }
  showProblems([]);
  announceEl.textContent = `${done} Press Enter to submit.`;
  document.getElementById("ws-submit").focus();
  return `${done} Enter submits.`;
}

// ---- keyboard ----------------------------------------------------------------------------------

function focusLikert(id) {
  const group = document.getElementById(`likert-${id}`);
  const radio = group.querySelector("input:checked") || group.querySelector("input");
  group.closest(".rk-output").scrollIntoView({ block: "nearest", behavior: "smooth" });
  radio.focus();
}

function onKey(event) {
  if (isTyping(event) || hasModifier(event) || skip.isOpen() || isCompareOpen()) return;
  const key = event.key;
  const chip = event.target.closest?.(".rk-chip");
  const likertGroup = event.target.closest?.(".rk-likert");
  const letter = key.length === 1 ? key.toLowerCase() : "";
  if (letter === "x" && !event.shiftKey) {
    event.preventDefault();
    const at = ids.indexOf(Number(event.target.closest?.("[data-id]")?.dataset.id));
    const left = at === -1 ? 0 : at;
    openCompare(letterOf.get(ids[left]), letterOf.get(ids[(left + 1) % ids.length]));
    return;
  }
  if (idOfLetter.has(letter)) {
    event.preventDefault();
    if (event.shiftKey) focusLikert(idOfLetter.get(letter));
    else chips.get(idOfLetter.get(letter)).focus();
    return;
  }
  if (likertGroup && /^[1-7]$/.test(key)) {
    event.preventDefault();
    const radio = likertGroup.querySelector(`input[value="${key}"]`);
    radio.checked = true;
    radio.focus();
    radio.dispatchEvent(new Event("change", { bubbles: true }));
    return;
  }
  if (!chip) return;
  const id = Number(chip.dataset.id);
  let next = null;
  if (/^[1-9]$/.test(key)) next = ops.place(id, Number(key));
  else if (key === "=" || key === "+") next = ops.tie(id);
  else if (key === "ArrowUp") next = ops.up(id);
  else if (key === "ArrowDown") next = ops.down(id);
  else if (key === "0" || key === "Backspace" || key === "Delete") next = ops.unplace(id);
  else if (key === "ArrowLeft" || key === "ArrowRight") {
    const all = [...document.querySelectorAll(".rk-chip")];
    const at = all.indexOf(chip) + (key === "ArrowLeft" ? -1 : 1);
    if (all[at]) all[at].focus();
    event.preventDefault();
    return;
  }
  if (next) {
    event.preventDefault();
    change(next, id);
  }
}

// ---- submit ------------------------------------------------------------------------------------

function problems() {
  const found = [];
  if (state.pool.length) {
    found.push({
      text: `Place every output in the ranking: ${state.pool.map((id) => letterOf.get(id)).join(", ")} not placed yet.`,
      focus: () => chips.get(state.pool[0]).focus(),
    });
  }
  const unrated = ids.filter((id) => !form.querySelector(`input[name="likert-${id}"]:checked`));
  if (unrated.length && !allUnusable.checked) {
    found.push({
      text: `Give a quality score (1–7) to ${unrated.map((id) => letterOf.get(id)).join(", ")}.`,
      focus: () => focusLikert(unrated[0]),
    });
  }
  return found;
}

// Lists what still stops a submission; hidden once nothing does.
function showProblems(found) {
  const list = document.createElement("ul");
  for (const problem of found) {
    const item = document.createElement("li");
    item.textContent = problem.text;
    list.append(item);
  }
  errorsEl.replaceChildren(list);
  errorsEl.hidden = found.length === 0;
}

// While the list is shown, each change updates it: a score given takes its letter off the list.
function refreshProblems() {
  if (!errorsEl.hidden) showProblems(problems());
}

function onSubmit(event) {
  const found = problems();
  if (found.length) {
    event.preventDefault();
    showProblems(found);
    found[0].focus();
    return;
  }
  document.getElementById("rk-tiers-input").value = JSON.stringify(state.tiers);
  document.getElementById("ws-seconds").value = String(seconds());
}

// ---- start -------------------------------------------------------------------------------------

// After a refused submission the server hands back what was sent; otherwise the newest saved draft.
const draft = config.bound ? config.draft : latestDraft(config.draftUrl, config.draft);
restore(draft || {});
const seconds = startTimer(config.seconds || draft?.seconds || 0);
const saver = createDraftSaver({ url: config.draftUrl, token: csrfToken(form), collect, seconds });
const skip = setupSkipDialog();
for (const id of ids) updateMeta(id);
render();
setupExpanders();
form.addEventListener("change", (event) => {
  const id = Number(event.target.name?.split("-")[1]);
  if (chips.has(id)) updateMeta(id);
  refreshProblems();
  saver.schedule();
});
form.addEventListener("input", () => saver.schedule());
form.addEventListener("submit", onSubmit);
noFormStateRestore(form);
lockOnSubmit(form, saver);
document.addEventListener("keydown", onKey);
setupQuickEntry({
  letters: config.completions.map((c) => c.letter),
  apply: applyEntry,
  isBlocked: (event) => isTyping(event) || skip.isOpen() || isCompareOpen(),
});
setupCommonKeys({ form, skip, onEnter: () => form.requestSubmit() });
