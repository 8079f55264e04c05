// Dashboard behaviour: charts from json_script data, the capabilities dialog, select-all boxes.
// No inline scripts anywhere: the Content-Security-Policy forbids them, so everything is wired here.
(() => {
  "use strict";

  // --- Charts: <canvas data-chart="ID"> reads its data from <script type="application/json" id="ID">.
  const renderCharts = (root) => {
    if (typeof window.Chart === "undefined") return;
    // Readable axis and legend text (Chart.js defaults to 12 px with a light grey).
    window.Chart.defaults.font.size = 13;
    window.Chart.defaults.color = "#374151";
    root.querySelectorAll("canvas[data-chart]").forEach((canvas) => {
      if (canvas.dataset.rendered === "true") return;
      const source = document.getElementById(canvas.dataset.chart);
      if (!source) return;
      let spec;
      try {
        spec = JSON.parse(source.textContent);
      } catch (err) {
        return;
      }
      canvas.dataset.rendered = "true";
      const stacked = Boolean(spec.stacked);
      // Chart.js assigns colours itself (its Colors plugin) when a dataset names none.
      new window.Chart(canvas, {
        type: spec.type || "line",
        data: {
          labels: spec.labels || [],
          datasets: (spec.datasets || []).map((ds) => ({
            label: ds.label,
            data: ds.data,
            stack: ds.stack,
            spanGaps: false,
            tension: 0.2,
            pointRadius: 0,
          })),
        },
        options: {
          responsive: true,
          maintainAspectRatio: false,
          animation: false,
          interaction: { mode: "index", intersect: false },
          scales: {
            x: { stacked, ticks: { maxTicksLimit: 12 } },
            y: { stacked, beginAtZero: true, title: { display: Boolean(spec.yTitle), text: spec.yTitle || "" } },
          },
          plugins: { legend: { position: "bottom" } },
        },
      });
    });
  };

  // --- Dialogs: a trigger with data-open-dialog="ID" opens that <dialog>; htmx fills its body.
  document.addEventListener("click", (event) => {
    const opener = event.target.closest("[data-open-dialog]");
    if (opener) {
      const dialog = document.getElementById(opener.dataset.openDialog);
      if (dialog && typeof dialog.showModal === "function" && window.htmx) {
        if (!dialog.open) dialog.showModal();
      }
      return;
    }
    const closer = event.target.closest("[data-close-dialog]");
    if (closer) {
      closer.closest("dialog")?.close();
      return;
    }
    // A click on the backdrop (the dialog element itself, outside its article) closes it.
    if (event.target instanceof HTMLDialogElement && event.target.open) event.target.close();
  });

  // --- Select all: a header checkbox data-select-all="NAME" toggles every box of that name in its form.
  document.addEventListener("change", (event) => {
    const box = event.target.closest("[data-select-all]");
    if (!box) return;
    const scope = box.closest("form") || document;
    scope.querySelectorAll(`input[type=checkbox][name="${box.dataset.selectAll}"]`).forEach((other) => {
      other.checked = box.checked;
    });
  });

  const init = () => {
    renderCharts(document);
    if (window.htmx) window.htmx.onLoad((el) => renderCharts(el));
  };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();

// Disclosure panels marked data-open-wide start open on wide screens (the users filters); on a
// phone they stay folded so the table starts above the fold.
(() => {
  if (!window.matchMedia("(min-width: 761px)").matches) return;
  document.querySelectorAll("details[data-open-wide]").forEach((d) => {
    d.open = true;
  });
})();
