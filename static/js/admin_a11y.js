// Django admin: names for what its markup leaves unnamed (templates/admin/base_site.html). Runs after the
// admin's own widgets are built (they build on "load" too, from scripts loaded before this one).
// - A date-and-time field is two inputs after the words "Date:" and "Time:", with no <label> for either:
//   each gets the field's label and its part as its name ("Deadline date").
// - The filter icon of a two-list select (groups, permissions) is a <span> with an aria-label, which a
//   span may not carry: it becomes an image, which may.
(function () {
  "use strict";

  const bare = (text) => text.trim().replace(/:$/, "");

  function nameDateTimeInputs() {
    document.querySelectorAll("p.datetime").forEach((box) => {
      const field = box.closest(".flex-container, .form-row");
      const label = field && field.querySelector("label");
      const fieldName = label ? bare(label.textContent) + " " : "";
      box.querySelectorAll("input").forEach((input) => {
        const before = input.previousSibling;
        const part = before && before.nodeType === Node.TEXT_NODE ? bare(before.textContent).toLowerCase() : "";
        if (!input.labels.length && !input.hasAttribute("aria-label")) input.setAttribute("aria-label", fieldName + part);
      });
    });
  }

  function roleForLabelledIcons() {
    document.querySelectorAll("span.help-tooltip[aria-label]:not([role])").forEach((icon) => icon.setAttribute("role", "img"));
  }

  window.addEventListener("load", () => setTimeout(() => { nameDateTimeInputs(); roleForLabelledIcons(); }, 0));
})();
