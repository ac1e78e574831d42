// The undo notice after a submit (templates/labeling/workspace/_undo.html): counts its seconds down, takes
// the notice away when the window closes (the submission counts from then on), and lets U undo. The form
// works without this script: a plain POST with its CSRF token.
import { hasModifier, isTyping } from "./common.js";

const notice = document.getElementById("undo-notice");
if (notice) {
  const seconds = document.getElementById("undo-seconds");
  // From the seconds the server counted, not its clock time: this computer's clock may be off.
  const until = Date.now() + Number(seconds.textContent) * 1000;
  const form = notice.querySelector("form");
  const button = document.getElementById("undo-button");

  const tick = () => {
    const left = Math.ceil((until - Date.now()) / 1000);
    if (left <= 0) {
      clearInterval(timer);
      button.disabled = true;
      form.replaceChildren(document.createTextNode("Submitted: the undo window has closed."));
      return;
    }
    seconds.textContent = String(left);
  };
  const timer = setInterval(tick, 1000);
  tick();

  document.addEventListener("keydown", (event) => {
    if (event.defaultPrevented || isTyping(event) || hasModifier(event)) return;
    if ((event.key === "u" || event.key === "U") && !button.disabled) {
      event.preventDefault();
      form.requestSubmit(button);
    }
  });
}
