// Prompt-writing and demonstration pages: restore the draft, keep it saved, time the task, submit once.
import {
  createDraftSaver, csrfToken, latestDraft, lockOnSubmit, noFormStateRestore, readConfig, setupCommonKeys,
  setupSkipDialog, startTimer,
} from "./common.js";

const config = readConfig();
const form = document.getElementById("ws-form");
const draft = config.bound ? {} : latestDraft(config.draftUrl, config.draft);
const FIELDS = ["text", "category", "source"];

function collect() {
  const data = new FormData(form);
  const out = {};
  for (const name of FIELDS) if (form.elements[name]) out[name] = data.get(name) || "";
  return out;
}

function restore() {
  if (config.bound) return; // a refused submission re-renders what was sent
  for (const name of FIELDS) {
    const field = form.elements[name];
    if (!field || typeof draft[name] !== "string" || !draft[name]) continue;
    if (field instanceof RadioNodeList) {
      for (const radio of field) radio.checked = radio.value === draft[name];
    } else {
      field.value = draft[name];
    }
  }
}

restore();
const seconds = startTimer(config.seconds || draft.seconds || 0);
const saver = createDraftSaver({ url: config.draftUrl, token: csrfToken(form), collect, seconds });
form.addEventListener("input", () => saver.schedule());
form.addEventListener("change", () => saver.schedule());
form.addEventListener("submit", () => {
  document.getElementById("ws-seconds").value = String(seconds());
});
noFormStateRestore(form);
lockOnSubmit(form, saver);
setupCommonKeys({ form, skip: setupSkipDialog() });

const text = form.elements.text;
if (text && !config.bound) {
  text.focus();
  text.setSelectionRange(text.value.length, text.value.length);
}
