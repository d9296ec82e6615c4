/**
 * The UI's script (served at `/ui/-/app.js`): filters table rows as you type and adds copy
 * buttons. Pages work without it; it never inserts markup from page data (text only).
 *
 * @module
 */

/** The script. */
export const SCRIPT = `"use strict";
(() => {
  for (const element of document.querySelectorAll("[data-script-only]")) element.hidden = false;
  const live = document.getElementById("filter-status");
  for (const input of document.querySelectorAll("input[data-filter]")) {
    const table = document.getElementById(input.dataset.filter);
    if (!table) continue;
    const rows = [...table.tBodies[0].rows];
    const apply = () => {
      const text = input.value.trim().toLowerCase();
      let shown = 0;
      for (const row of rows) {
        const match = (row.dataset.key || row.textContent).toLowerCase().includes(text);
        row.hidden = !match;
        if (match) shown++;
      }
      if (live) {
        live.textContent = text === "" ? "" :
          shown + " of " + rows.length + " shown on this page" +
          (input.form && input.form.dataset.more === "true" ? " (press Enter to search all)" : "");
      }
    };
    input.addEventListener("input", apply);
    if (input.value !== "") apply();
  }

  const copy = async (text, button) => {
    try {
      await navigator.clipboard.writeText(text);
    } catch {
      const area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.style.position = "fixed";
      area.style.opacity = "0";
      document.body.append(area);
      area.select();
      document.execCommand("copy");
      area.remove();
    }
    const label = button.textContent;
    button.textContent = "Copied";
    setTimeout(() => { button.textContent = label; }, 1500);
  };
  for (const element of document.querySelectorAll("[data-copy]")) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "copy";
    button.textContent = "Copy";
    button.setAttribute("aria-label", "Copy " + (element.dataset.copyLabel || "text"));
    const text = element.dataset.copy || element.textContent;
    button.addEventListener("click", () => copy(text, button));
    element.after(button);
  }
})();
`;
