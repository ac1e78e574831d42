// Shared by every task page: the page's data (json_script), the timer, the server-side draft, the skip
// dialog and the keys every page knows (S skips, Ctrl+Enter submits). No HTML is ever built from text.
import { draftKey, draftsCleared } from "../drafts.js";

export function readConfig() {
  return JSON.parse(document.getElementById("ws-config").textContent);
}

export function csrfToken(form) {
  return form.querySelector("input[name=csrfmiddlewaretoken]").value;
}

// True when a key press belongs to what the labeler is typing, not to a shortcut.
export function isTyping(event) {
  const el = event.target;
  if (!(el instanceof HTMLElement)) return false;
  if (el.isContentEditable || el.tagName === "TEXTAREA" || el.tagName === "SELECT") return true;
  return el.tagName === "INPUT" && !["radio", "checkbox", "button", "submit"].includes(el.type);
}

export function hasModifier(event) {
  return event.ctrlKey || event.metaKey || event.altKey;
}

function formatSeconds(total) {
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

// Seconds spent on the task while its page is visible; carries on from a reload (via the draft).
export function startTimer(initial) {
  const el = document.getElementById("ws-timer");
  let seconds = Math.max(0, Math.floor(Number(initial) || 0));
  el.textContent = formatSeconds(seconds);
  setInterval(() => {
    if (document.visibilityState !== "visible") return;
    seconds += 1;
    el.textContent = formatSeconds(seconds);
  }, 1000);
  return () => seconds;
}

// Saves the page's work to the server (Assignment.draft) a moment after each change and when the page
// is left, and keeps a copy in this browser (localStorage) so a reload that outruns the last save still
// finds it. A 409 means the task is no longer ours: say so and stop saving.
export function createDraftSaver({ url, token, collect, seconds }) {
  const status = document.getElementById("ws-draft-status");
  const localKey = draftKey(url);
  let timer = null;
  let lastSent = null;
  let stopped = false;

  function show(text, isError = false) {
    status.textContent = text;
    status.classList.toggle("is-error", isError);
  }

  function keepLocally(draft) {
    if (draftsCleared()) return; // logging out: the page's last save goes to the server only
    try {
      localStorage.setItem(localKey, JSON.stringify(draft));
    } catch {
      // storage full or disabled: the server copy is the one that counts
    }
  }

  async function send(keepalive = false) {
    if (stopped) return;
    const draft = collect();
    const key = JSON.stringify(draft);
    const stamped = { ...draft, seconds: seconds(), saved_at: Date.now() };
    keepLocally(stamped);
    if (key === lastSent) return;
    try {
      const response = await fetch(url, {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRFToken": token },
        credentials: "same-origin",
        body: JSON.stringify({ draft: stamped }),
        keepalive,
      });
      if (response.ok) {
        lastSent = key;
        show(`Draft saved ${new Date().toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}`);
        return;
      }
      const data = await response.json().catch(() => ({}));
      if (response.status === 409) stopped = true;
      show(data.detail ? `Not saved: ${data.detail}` : `Draft not saved (error ${response.status})`, true);
    } catch {
      show("Offline: draft kept in this browser, not on the server yet", true);
    }
  }

  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "hidden") send(true);
  });
  window.addEventListener("pagehide", () => send(true));

  return {
    schedule() {
      clearTimeout(timer);
      timer = setTimeout(send, 600);
    },
    flush: () => send(),
    // Submitting: stop saving, but keep this browser's copy. The server may refuse the submission (it then
    // keeps what was sent as the draft and redirects back here); once the task is submitted its page is never
    // shown again and the copy ages out (forgetOldDrafts).
    stop() {
      clearTimeout(timer);
      stopped = true;
    },
  };
}

const DRAFT_KEEP_MS = 7 * 24 * 3600 * 1000;

// This browser's copies of drafts older than a week: their tasks are long submitted, skipped or expired.
export function forgetOldDrafts() {
  try {
    const old = [];
    for (let i = 0; i < localStorage.length; i += 1) {
      const key = localStorage.key(i);
      if (!key.startsWith(draftKey(""))) continue;
      const saved = JSON.parse(localStorage.getItem(key) || "null")?.saved_at || 0;
      if (Date.now() - saved > DRAFT_KEEP_MS) old.push(key);
    }
    old.forEach((key) => localStorage.removeItem(key));
  } catch {
    // storage disabled or a copy unreadable: nothing to age out
  }
}

// Back or Forward can bring a task page out of the browser's page cache as it was when left (its form
// submitted, saving stopped): load it afresh instead, so it starts from the newest draft.
window.addEventListener("pageshow", (event) => {
  if (event.persisted) window.location.reload();
});

// The draft to start from: the server's, or this browser's copy when that one is newer.
export function latestDraft(url, serverDraft) {
  forgetOldDrafts();
  let local = null;
  try {
    local = JSON.parse(localStorage.getItem(draftKey(url)) || "null");
  } catch {
    local = null;
  }
  const server = serverDraft || {};
  if (local && typeof local === "object" && (local.saved_at || 0) > (server.saved_at || 0)) return local;
  return server;
}

export function setupSkipDialog() {
  const dialog = document.getElementById("ws-skip-dialog");
  const reason = document.getElementById("ws-skip-reason");
  const open = () => {
    if (dialog.open) return;
    dialog.showModal();
    reason.focus();
  };
  document.getElementById("ws-skip-open").addEventListener("click", open);
  document.getElementById("ws-skip-cancel").addEventListener("click", () => dialog.close());
  for (const button of dialog.querySelectorAll(".ws-reason")) {
    button.addEventListener("click", () => {
      reason.value = button.textContent.trim();
      reason.focus();
    });
  }
  reason.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      reason.form.requestSubmit();
    }
  });
  return { open, isOpen: () => dialog.open };
}

// Keys every task page shares. `onEnter` (optional) handles a plain Enter outside text fields.
export function setupCommonKeys({ form, skip, onEnter }) {
  document.addEventListener("keydown", (event) => {
    if (skip.isOpen() || event.defaultPrevented) return;
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      form.requestSubmit();
      return;
    }
    if (isTyping(event) || hasModifier(event)) return;
    if (event.key === "s" || event.key === "S") {
      if (event.shiftKey) return;
      event.preventDefault();
      skip.open();
    } else if (event.key === "Enter" && onEnter) {
      const tag = event.target.tagName;
      if (["BUTTON", "A", "SUMMARY"].includes(tag)) return; // their own Enter
      event.preventDefault();
      onEnter();
    }
  });
}

// The page starts from the newest draft only: without this, Back would have the browser put the values the
// form had when it was left (before a refused submission, say) over the draft restored since.
export function noFormStateRestore(form) {
  form.setAttribute("autocomplete", "off");
}

// Guards against double submission: the first submit disables the button (the server is idempotent too).
export function lockOnSubmit(form, saver) {
  const button = form.querySelector("[type=submit]");
  form.addEventListener("submit", (event) => {
    if (event.defaultPrevented) return;
    saver.stop();
    setTimeout(() => {
      button.disabled = true;
      button.classList.add("is-busy");
    }, 0);
  });
}
