// User actions: small conveniences only. The server is what guarantees at-most-once (idempotency
// keys) and checks the typed username; nothing here is needed for correctness.
(() => {
  // A form marked data-once submits once: its submit buttons are disabled after the first submit.
  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-once")) return;
    if (form.dataset.submitted === "true") {
      event.preventDefault();
      return;
    }
    form.dataset.submitted = "true";
    // Disable after the submit event has been dispatched, so the browser still sends the form.
    setTimeout(() => {
      form.querySelectorAll("button[type=submit]").forEach((button) => {
        button.disabled = true;
        button.setAttribute("aria-busy", "true");
      });
    }, 0);
  });

  // Delete: the button stays disabled until the typed text equals the username.
  const syncConfirm = (input) => {
    const button = document.getElementById(input.dataset.confirmButton || "");
    if (button) button.disabled = input.value.trim() !== input.dataset.confirmMatch;
  };
  document.querySelectorAll("[data-confirm-match]").forEach((input) => {
    syncConfirm(input);
    input.addEventListener("input", () => syncConfirm(input));
  });

  // A suggested value: a button data-fill="#input" data-value="..." puts the value in the input and
  // lets the input's own listeners (the htmx preview) see the change.
  document.addEventListener("click", (event) => {
    const button = event.target.closest("[data-fill]");
    if (!button) return;
    const input = document.querySelector(button.dataset.fill);
    if (!input) return;
    input.value = button.dataset.value || "";
    input.dispatchEvent(new Event("input", { bubbles: true }));
    input.focus();
  });

  // Bulk: a header checkbox selects or clears every checkbox of the given name in its form.
  document.addEventListener("change", (event) => {
    const box = event.target.closest("[data-select-all]");
    if (!box) return;
    const form = box.closest("form");
    if (!form) return;
    form.querySelectorAll(`input[type=checkbox][name="${box.dataset.selectAll}"]`).forEach((other) => {
      other.checked = box.checked;
    });
  });
})();
