// The copies of labelers' drafts kept in this browser (localStorage, one key per task page; see
// workspace/common.js). They are the labeler's own: logging out clears them (logout.js), and so does any
// page shown signed out, for a log out made elsewhere or a session that expired.
const PREFIX = "loopwork-draft:";
let cleared = false;

export function draftKey(url) {
  return `${PREFIX}${url}`;
}

// True once this page has cleared the drafts (logging out): nothing is kept locally after that.
export function draftsCleared() {
  return cleared;
}

export function clearDrafts() {
  cleared = true;
  for (const name of ["localStorage", "sessionStorage"]) {
    try {
      const storage = window[name];
      const keys = [];
      for (let i = 0; i < storage.length; i += 1) keys.push(storage.key(i));
      for (const key of keys) if (key.startsWith(PREFIX)) storage.removeItem(key);
    } catch {
      // storage disabled: nothing was kept
    }
  }
}
