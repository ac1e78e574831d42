// Management pages: ask before a button with data-confirm submits its form (closing a batch, deleting a snapshot).
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-confirm]");
  if (button && !window.confirm(button.dataset.confirm)) {
    event.preventDefault();
  }
});
