// torii's own behaviour. No inline scripts anywhere (the Content-Security-Policy forbids them).
document.addEventListener("click", (event) => {
  const dismiss = event.target.closest("[data-dismiss]");
  if (dismiss) {
    dismiss.closest(".toast")?.remove();
    return;
  }
  // The main menu on narrow screens: a button that shows and hides it.
  const toggle = event.target.closest("[data-menu-toggle]");
  if (toggle) {
    const open = toggle.getAttribute("aria-expanded") !== "true";
    toggle.setAttribute("aria-expanded", String(open));
    document.getElementById(toggle.getAttribute("aria-controls"))?.classList.toggle("open", open);
  }
});
