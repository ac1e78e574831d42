// On every page (base.html): the log out button clears this browser's drafts before the session ends;
// a page without it is shown signed out (the login page after a log out), which clears them too.
import { clearDrafts } from "./drafts.js";

const logout = document.querySelector("form.logout");
if (logout) {
  logout.addEventListener("submit", clearDrafts);
} else {
  clearDrafts();
}
