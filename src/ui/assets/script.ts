/**
 * The UI's script (served at `/ui/-/app.js`): filters table rows as you type (the rows shown
 * at once, then the server's first page for the text where the list is paged) and adds copy
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
    const rowsOf = () => {
      const table = document.getElementById(input.dataset.filter);
      return table ? [...table.tBodies[0].rows] : [];
    };
    const say = (text) => { if (live) live.textContent = text; };
    // At once: the rows of this page that contain the text.
    const apply = () => {
      const text = input.value.trim().toLowerCase();
      const rows = rowsOf();
      let shown = 0;
      for (const row of rows) {
        const match = (row.dataset.key || row.textContent).toLowerCase().includes(text);
        row.hidden = !match;
        if (match) shown++;
      }
      return { text, shown, total: rows.length };
    };
    const results = input.dataset.results && document.getElementById(input.dataset.results);
    let pending;
    let timer;
    // Then, for a list the server pages: the server's first page for the text (same URL as
    // pressing Enter; the page's rows replace these, the address follows).
    const search = async (text) => {
      pending?.abort();
      const controller = pending = new AbortController();
      const url = new URL(input.form.action, location.href);
      if (text !== "") url.searchParams.set("q", text);
      try {
        const response = await fetch(url, { signal: controller.signal, credentials: "same-origin" });
        if (!response.ok) throw new Error("HTTP " + response.status);
        const page = new DOMParser().parseFromString(await response.text(), "text/html");
        const fresh = page.getElementById(results.id);
        if (controller !== pending || !fresh) return;
        results.replaceChildren(...[...fresh.childNodes].map((n) => document.importNode(n, true)));
        history.replaceState(null, "", url);
        const { shown } = apply();
        const more = results.querySelector('a[rel="next"]') !== null;
        const partial = results.querySelector("[data-partial]") !== null;
        say(text === "" ? "" : shown + (shown === 1 ? " repository matches" : " repositories match") +
          (partial ? " in the part searched; Search further reads on" :
            more ? "; more on the next page" : ""));
      } catch (error) {
        if (error.name !== "AbortError") say("Search failed: press Enter to search");
      }
    };
    input.addEventListener("input", () => {
      const { text, shown, total } = apply();
      if (!results) {
        say(text === "" ? "" : shown + " of " + total + " shown");
        return;
      }
      say(text === "" ? "" : shown + " of " + total + " on this page; searching…");
      clearTimeout(timer);
      timer = setTimeout(() => search(text), 150);
    });
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
