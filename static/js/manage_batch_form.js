// New batch page: show only the task sections that apply to the chosen kind (all show without JavaScript).
(() => {
  const kind = document.querySelector("#batch-form select[name=kind]");
  if (!kind) return;
  const sections = document.querySelectorAll("#batch-form [data-kinds]");
  const update = () => {
    for (const section of sections) {
      section.hidden = !section.dataset.kinds.split(" ").includes(kind.value);
    }
  };
  kind.addEventListener("change", update);
  update();
})();
