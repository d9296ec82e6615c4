/// <reference lib="dom" />
/**
 * The web UI in headless Chromium (Debian's `chromium`, driven by puppeteer-core; no browser
 * download): list → filter → repository → tag → manifest → referrers, copy buttons, delete with
 * its confirmation, auth on and off, stored payloads that must not run, reading without
 * JavaScript, dark theme and a phone-sized screen, and no console errors on the way.
 *
 * With `UI_SCREENSHOTS=<dir>` the main pages are saved there as PNG (`deno task ui-screenshots`
 * refreshes the ones in docs/).
 *
 * @module
 */
import assert from "node:assert/strict";
import bcrypt from "bcryptjs";
import puppeteer, { type Browser, type Page } from "puppeteer-core";
import type { Config } from "../../src/config.ts";
import { startServer, type TestServer } from "../helpers/server.ts";
import { skipWithout } from "../helpers/tools.ts";
import { PAYLOADS, type Seeded, seedRegistry } from "./fixtures.ts";

const ignore = skipWithout("chromium");
const SCREENSHOTS = Deno.env.get("UI_SCREENSHOTS");
/** Puppeteer keeps a WebSocket and child process whose ops outlive single awaits. */
const LOOSE = { sanitizeOps: false, sanitizeResources: false };

async function launch(): Promise<Browser> {
  const executablePath = new TextDecoder().decode(
    new Deno.Command("sh", { args: ["-c", "command -v chromium"], stdout: "piped" }).outputSync()
      .stdout,
  ).trim();
  return await puppeteer.launch({
    executablePath,
    headless: true,
    // The sandbox needs user namespaces root does not get here.
    args: [...(Deno.uid() === 0 ? ["--no-sandbox"] : []), "--disable-dev-shm-usage"],
  });
}

/** A page that records console errors, uncaught exceptions and failed loads. */
async function watchedPage(browser: Browser): Promise<{ page: Page; problems: string[] }> {
  const context = await browser.createBrowserContext();
  const page = await context.newPage();
  const problems: string[] = [];
  page.on("console", (message) => {
    if (message.type() === "error" || message.type() === "warn") {
      problems.push(`console ${message.type()}: ${message.text()}`);
    }
  });
  page.on("pageerror", (error) => problems.push(`page error: ${String(error)}`));
  page.on("requestfailed", (request) => problems.push(`failed: ${request.url()}`));
  page.on("dialog", (dialog) => {
    problems.push(`dialog: ${dialog.message()}`);
    void dialog.dismiss();
  });
  return { page, problems };
}

async function withSeeded(
  config: Partial<Config>,
  body: (server: TestServer, seeded: Seeded, browser: Browser) => Promise<void>,
): Promise<void> {
  const dataDir = await Deno.makeTempDir({ prefix: "berth-ui-browser-" });
  let browser: Browser | undefined;
  try {
    const seeding = await startServer({ dataDir });
    const seeded = await seedRegistry(seeding.url);
    await seeding.close();
    const server = await startServer({ dataDir, config });
    try {
      browser = await launch();
      await body(server, seeded, browser);
    } finally {
      await browser?.close();
      await server.close();
    }
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
}

async function screenshot(page: Page, name: string): Promise<void> {
  if (!SCREENSHOTS) return;
  await Deno.mkdir(SCREENSHOTS, { recursive: true });
  // The whole page in one window (rows off screen are not rendered until they come into view,
  // and a full-page capture does not bring them there), then the window as it was.
  const viewport = page.viewport()!;
  const height = await page.evaluate(() => document.documentElement.scrollHeight);
  await page.setViewport({ ...viewport, height: Math.max(viewport.height, height) });
  await page.evaluate(() =>
    new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)))
  );
  await page.screenshot({ path: `${SCREENSHOTS}/${name}.png` as `${string}.png` });
  await page.setViewport(viewport);
}

async function visibleRows(page: Page, table: string): Promise<string[]> {
  return await page.$$eval(
    `#${table} tbody tr`,
    (rows) => rows.filter((row) => !row.hidden).map((row) => row.dataset.key ?? ""),
  );
}

/** Click a link and wait for the page it opens. */
async function follow(page: Page, selector: string): Promise<void> {
  await Promise.all([page.waitForNavigation(), page.click(selector)]);
}

Deno.test({
  name: "ui browser: list → filter → repository → tag → manifest → referrers, no console errors",
  ignore,
  ...LOOSE,
  fn: async () => {
    await withSeeded({}, async (server, seeded, browser) => {
      const { page, problems } = await watchedPage(browser);
      await page.setViewport({ width: 1200, height: 800 });
      const response = await page.goto(`${server.url}/`);
      assert.equal(response?.status(), 200);
      assert.equal(new URL(page.url()).pathname, "/ui/");
      assert.equal(await page.$eval("h1", (h) => h.textContent), "Repositories");
      assert.deepEqual(await visibleRows(page, "repositories"), seeded.repositories);
      await screenshot(page, "repositories");

      // The script narrows the rows shown as you type, then asks the server.
      await page.type("#filter", "team");
      assert.deepEqual(await visibleRows(page, "repositories"), ["team/api", "team/web"]);
      await page.waitForFunction(() =>
        /2 repositories match/.test(document.getElementById("filter-status")?.textContent ?? "")
      );
      assert.equal(new URL(page.url()).search, "?q=team");
      await page.$eval("#filter", (input) => (input as HTMLInputElement).value = "");
      await page.type("#filter", "alp");
      // The rows shown were the server's for "team": the next answer brings alpine.
      await page.waitForFunction(() => location.search === "?q=alp");
      assert.deepEqual(await visibleRows(page, "repositories"), ["library/alpine"]);
      // Enter searches on the server (a real URL).
      await Promise.all([page.waitForNavigation(), page.keyboard.press("Enter")]);
      assert.equal(new URL(page.url()).search, "?q=alp");
      assert.deepEqual(await visibleRows(page, "repositories"), ["library/alpine"]);

      await follow(page, 'a[href="/ui/library/alpine"]');
      assert.equal(new URL(page.url()).pathname, "/ui/library/alpine");
      assert.deepEqual(await visibleRows(page, "tags"), ["3.20", "latest"]);
      await screenshot(page, "repository");
      // Copy buttons appear with the script and say when they copied.
      const copy = await page.$("p.commands button.copy");
      assert.ok(copy);
      await copy.click();
      await page.waitForFunction(() =>
        document.querySelector("p.commands button.copy")?.textContent === "Copied"
      );

      await follow(page, 'tr[data-key="latest"] th a');
      assert.equal(new URL(page.url()).pathname, "/ui/library/alpine/-/manifest/latest");
      const platforms = await page.$$eval(
        "#platforms tbody th a",
        (as) => as.map((a) => a.textContent),
      );
      assert.deepEqual(platforms, ["linux/amd64", "linux/arm64/v8"]);
      await screenshot(page, "index");

      await follow(page, "#platforms tbody tr:first-child th a");
      assert.equal(
        decodeURIComponent(new URL(page.url()).pathname),
        `/ui/library/alpine/-/manifest/${seeded.platforms[0]}`,
      );
      const headings = await page.$$eval("h3", (hs) => hs.map((h) => h.textContent ?? ""));
      for (const title of ["Signatures", "SBOMs", "Attestations"]) {
        assert.ok(headings.some((h) => h.startsWith(title)), `${title} in ${headings}`);
      }
      await screenshot(page, "manifest");
      await follow(
        page,
        `a[href="/ui/library/alpine/-/manifest/${encodeURIComponent(seeded.referrers.sbom)}"]`,
      );
      assert.match(await page.$eval("main", (m) => m.textContent ?? ""), /application\/spdx\+json/);
      // Links are real URLs: the back button returns to the manifest.
      await page.goBack();
      assert.equal(
        decodeURIComponent(new URL(page.url()).pathname),
        `/ui/library/alpine/-/manifest/${seeded.platforms[0]}`,
      );
      assert.deepEqual(problems, []);
    });
  },
});

Deno.test({
  name: "ui browser: typing in the filter asks the server: matches beyond the first page show",
  ignore,
  ...LOOSE,
  fn: async () => {
    // 400 repositories written straight into distribution's tree (one tag each).
    const dataDir = await Deno.makeTempDir({ prefix: "berth-ui-filter-" });
    const names = Array.from(
      { length: 400 },
      (_, i) => `team${i % 4}/service-${String(i).padStart(4, "0")}`,
    ).sort();
    const link = new TextEncoder().encode(`sha256:${"ab".repeat(32)}`);
    for (const name of names) {
      const dir = `${dataDir}/docker/registry/v2/repositories/${name}/_manifests/tags/v1/current`;
      await Deno.mkdir(dir, { recursive: true });
      await Deno.writeFile(`${dir}/link`, link);
    }
    const server = await startServer({ dataDir });
    const browser = await launch();
    try {
      const { page, problems } = await watchedPage(browser);
      await page.goto(`${server.url}/ui/`);
      assert.deepEqual(await visibleRows(page, "repositories"), names.slice(0, 100));
      // service-0397 is on the last page (team1/...): the first page has no match, the server has.
      await page.type("#filter", "service-0397");
      await page.waitForFunction(() => location.search === "?q=service-0397");
      await page.waitForFunction(() =>
        /1 repository matches/.test(document.getElementById("filter-status")?.textContent ?? "")
      );
      assert.deepEqual(await visibleRows(page, "repositories"), ["team1/service-0397"]);
      // Every keystroke narrows; clearing the box brings the first page back.
      await page.$eval("#filter", (input) => (input as HTMLInputElement).select());
      await page.keyboard.press("Backspace");
      await page.waitForFunction(() => location.search === "");
      await page.waitForFunction(() =>
        document.querySelectorAll("#repositories tbody tr").length === 100
      );
      await page.type("#filter", "team3/service-03");
      await page.waitForFunction(() => location.search === "?q=team3%2Fservice-03");
      await page.waitForFunction(() =>
        /repositories match/.test(document.getElementById("filter-status")?.textContent ?? "")
      );
      assert.deepEqual(
        await visibleRows(page, "repositories"),
        names.filter((n) => n.startsWith("team3/service-03")),
      );
      // The address is the search: reloading shows the same rows.
      await page.reload();
      assert.deepEqual(
        await visibleRows(page, "repositories"),
        names.filter((n) => n.startsWith("team3/service-03")),
      );
      assert.deepEqual(problems, []);
    } finally {
      await browser.close();
      await server.close();
      await Deno.remove(dataDir, { recursive: true });
    }
  },
});

Deno.test({
  name: "ui browser: delete asks for confirmation and removes the tag",
  ignore,
  ...LOOSE,
  fn: async () => {
    await withSeeded({}, async (server, _seeded, browser) => {
      const { page, problems } = await watchedPage(browser);
      await page.goto(`${server.url}/ui/team/api`);
      await follow(page, 'a[aria-label="Delete tag v1.0.0"]');
      assert.equal(new URL(page.url()).pathname, "/ui/team/api/-/delete/v1.0.0");
      assert.match(await page.$eval("main", (m) => m.textContent ?? ""), /Delete tag v1\.0\.0/);
      // Cancel goes back and deletes nothing.
      await follow(page, "form a.button");
      assert.ok((await visibleRows(page, "tags")).includes("v1.0.0"));
      await follow(page, 'a[aria-label="Delete tag v1.0.0"]');
      await follow(page, "form button.danger");
      assert.equal(new URL(page.url()).pathname, "/ui/team/api");
      assert.match(await page.$eval("p.notice", (p) => p.textContent ?? ""), /Deleted v1\.0\.0/);
      assert.deepEqual(await visibleRows(page, "tags"), ["latest", "v1.1.0", "v2.0.0"]);
      const head = await fetch(`${server.url}/v2/team/api/manifests/v1.0.0`, { method: "HEAD" });
      assert.equal(head.status, 404);
      assert.deepEqual(problems, []);
    });
  },
});

Deno.test({
  name: "ui browser: stored HTML/JS payloads show as text and never run",
  ignore,
  ...LOOSE,
  fn: async () => {
    await withSeeded({}, async (server, _seeded, browser) => {
      const { page, problems } = await watchedPage(browser);
      for (const path of ["/ui/", "/ui/xss/app", "/ui/xss/app/-/manifest/v1"]) {
        await page.goto(server.url + path);
        await page.$$eval("details", (ds) => ds.forEach((d) => d.open = true));
        const state = await page.evaluate(() => ({
          xss: (globalThis as { __xss?: unknown }).__xss,
          injected:
            document.querySelectorAll("main img, main svg, main iframe, main script").length,
          text: document.querySelector("main")?.textContent ?? "",
        }));
        assert.equal(state.xss, undefined, path);
        assert.equal(state.injected, 0, path);
        if (path.includes("manifest")) {
          for (const payload of PAYLOADS) assert.ok(state.text.includes(payload), payload);
        }
      }
      assert.deepEqual(problems, []);
    });
  },
});

Deno.test({
  name: "ui browser: pages read without JavaScript, follow the dark theme, fit a phone",
  ignore,
  ...LOOSE,
  fn: async () => {
    await withSeeded({}, async (server, seeded, browser) => {
      const { page, problems } = await watchedPage(browser);
      await page.setJavaScriptEnabled(false);
      await page.goto(`${server.url}/ui/library/alpine`);
      assert.deepEqual(await visibleRows(page, "tags"), ["3.20", "latest"]);
      assert.equal(await page.$$eval("button.copy", (bs) => bs.length), 0);
      assert.equal(await page.$eval("#filter", (i) => i.closest("[hidden]") !== null), true);
      await page.setJavaScriptEnabled(true);

      await page.emulateMediaFeatures([{ name: "prefers-color-scheme", value: "dark" }]);
      await page.goto(`${server.url}/ui/`);
      const background = await page.$eval("body", (b) => getComputedStyle(b).backgroundColor);
      assert.equal(background, "rgb(13, 17, 23)");
      await screenshot(page, "repositories-dark");

      await page.emulateMediaFeatures([{ name: "prefers-color-scheme", value: "light" }]);
      await page.setViewport({ width: 390, height: 844, isMobile: true, hasTouch: true });
      await page.goto(`${server.url}/ui/library/alpine/-/manifest/${seeded.platforms[0]}`);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - 390);
      assert.ok(overflow <= 0, `page scrolls sideways by ${overflow}px`);
      await screenshot(page, "manifest-phone");
      // Keyboard: the skip link comes first, then the top bar's links.
      await page.keyboard.press("Tab");
      assert.equal(
        await page.evaluate(() => document.activeElement?.textContent),
        "Skip to content",
      );
      assert.deepEqual(problems, []);
    });
  },
});

/** Contrast problems of a page: text under 4.5:1, input borders under 3:1 (WCAG AA). */
async function contrastProblems(page: Page): Promise<string[]> {
  return await page.evaluate(() => {
    const rgb = (color: string): number[] => {
      const m = /rgba?\(([\d.]+), ([\d.]+), ([\d.]+)(?:, ([\d.]+))?\)/.exec(color);
      return m
        ? [Number(m[1]), Number(m[2]), Number(m[3]), m[4] === undefined ? 1 : Number(m[4])]
        : [0, 0, 0, 0];
    };
    const luminance = ([r, g, b]: number[]) => {
      const lin = (c: number) => {
        const v = c / 255;
        return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
      };
      return 0.2126 * lin(r!) + 0.7152 * lin(g!) + 0.0722 * lin(b!);
    };
    const ratio = (a: number[], b: number[]) => {
      const [x, y] = [luminance(a), luminance(b)].sort((p, q) => q - p);
      return (x! + 0.05) / (y! + 0.05);
    };
    const background = (element: Element | null): number[] => {
      for (let e = element; e; e = e.parentElement) {
        const color = rgb(getComputedStyle(e).backgroundColor);
        if (color[3]! > 0) return color;
      }
      return rgb(getComputedStyle(document.body).backgroundColor);
    };
    const problems: string[] = [];
    const seen = new Set<string>();
    for (const element of document.querySelectorAll("body *")) {
      const style = getComputedStyle(element);
      const box = element.getBoundingClientRect();
      if (box.width === 0 || box.height === 0 || style.visibility === "hidden") continue;
      const ownText = [...element.childNodes].some((n) =>
        n.nodeType === Node.TEXT_NODE && (n.textContent ?? "").trim() !== ""
      );
      const key = `${element.tagName}.${element.className}`;
      if (ownText) {
        const value = ratio(rgb(style.color), background(element));
        if (value < 4.5 && !seen.has(key)) {
          seen.add(key);
          problems.push(`${key} text ${value.toFixed(2)}:1`);
        }
      }
      if (element.tagName === "INPUT" && (element as HTMLInputElement).type !== "hidden") {
        const value = ratio(rgb(style.borderTopColor), background(element.parentElement));
        if (value < 3) problems.push(`${key}#${element.id} border ${value.toFixed(2)}:1`);
      }
    }
    return problems;
  });
}

Deno.test({
  name: "ui browser: labels, keyboard order, contrast in both themes, every page fits a phone",
  ignore,
  ...LOOSE,
  fn: async () => {
    await withSeeded({}, async (server, seeded, browser) => {
      const { page, problems } = await watchedPage(browser);
      const pages = [
        "/ui/",
        "/ui/library/alpine",
        `/ui/library/alpine/-/manifest/${seeded.platforms[0]}`,
        "/ui/team/api/-/delete/v1.0.0",
      ];
      for (const scheme of ["light", "dark"] as const) {
        await page.emulateMediaFeatures([{ name: "prefers-color-scheme", value: scheme }]);
        await page.setViewport({ width: 1200, height: 800 });
        for (const path of pages) {
          await page.goto(server.url + path);
          assert.deepEqual(await contrastProblems(page), [], `${scheme} ${path}`);
          // Every visible control has a label (its own text, a <label>, or aria-label).
          const unlabelled = await page.$$eval(
            "input, button, select, textarea",
            (controls) =>
              controls.filter((c) => {
                const control = c as HTMLInputElement;
                if (control.type === "hidden" || control.closest("[hidden]")) return false;
                return (control.labels?.length ?? 0) === 0 && !control.getAttribute("aria-label") &&
                  (control.textContent ?? "").trim() === "";
              }).map((c) => c.outerHTML.slice(0, 80)),
          );
          assert.deepEqual(unlabelled, [], path);
        }
      }
      // The keyboard reaches everything in reading order, with a visible focus ring.
      await page.emulateMediaFeatures([{ name: "prefers-color-scheme", value: "light" }]);
      await page.goto(`${server.url}/ui/`);
      const order: string[] = [];
      for (let i = 0; i < 6; i++) {
        await page.keyboard.press("Tab");
        order.push(
          await page.evaluate(() => {
            const active = document.activeElement as HTMLElement;
            const ring = getComputedStyle(active).outlineStyle;
            const name = active.id || active.textContent?.trim() || active.tagName;
            return `${name}${ring === "none" ? " (no focus ring)" : ""}`;
          }),
        );
      }
      assert.deepEqual(order, [
        "Skip to content",
        "berth",
        "filter",
        "Search",
        seeded.repositories[0],
        seeded.repositories[1],
      ]);
      // The skip link moves focus past the top bar; Enter on a row opens the repository.
      await page.goto(`${server.url}/ui/`);
      await page.keyboard.press("Tab");
      await page.keyboard.press("Enter");
      assert.equal(new URL(page.url()).hash, "#main");
      await page.focus(`a[href="/ui/${seeded.repositories[0]}"]`);
      await Promise.all([page.waitForNavigation(), page.keyboard.press("Enter")]);
      assert.equal(new URL(page.url()).pathname, `/ui/${seeded.repositories[0]}`);

      // A phone: no page scrolls sideways.
      await page.setViewport({ width: 360, height: 740, isMobile: true, hasTouch: true });
      for (const path of pages) {
        await page.goto(server.url + path);
        const overflow = await page.evaluate(() => document.documentElement.scrollWidth - 360);
        assert.ok(overflow <= 0, `${path} scrolls sideways by ${overflow}px`);
        if (path === "/ui/") await screenshot(page, "repositories-phone");
        if (path === "/ui/library/alpine") await screenshot(page, "repository-phone");
      }
      assert.deepEqual(problems, []);
    });
  },
});

const PASSWORDS = { alice: "alice-pw", bob: "bob-pw" };

/** Sign in with the form (the page is on the sign-in form); lands where the form sends. */
async function signIn(page: Page, user: keyof typeof PASSWORDS | "wrong"): Promise<void> {
  await page.type("#user", user === "wrong" ? "bob" : user);
  await page.type("#password", user === "wrong" ? "not-the-password" : PASSWORDS[user]);
  await Promise.all([page.waitForNavigation(), page.keyboard.press("Enter")]);
}

for (const mode of ["htpasswd", "token"] as const) {
  Deno.test({
    name: `ui browser (${mode} auth): sign in with the form, see what you may pull, sign out`,
    ignore,
    ...LOOSE,
    fn: async () => {
      const dir = await Deno.makeTempDir({ prefix: "berth-ui-auth-" });
      const path = `${dir}/htpasswd`;
      await Deno.writeTextFile(
        path,
        Object.entries(PASSWORDS).map(([u, p]) => `${u}:${bcrypt.hashSync(p, 4)}\n`).join(""),
      );
      const config: Partial<Config> = {
        auth: {
          htpasswd: { realm: "berth-ui", path },
          ...(mode === "token" && { token: { service: "berth-ui", issuer: "berth-ui" } }),
          policy: {
            rules: [
              { repositories: ["**"], users: ["alice"], actions: ["*"] },
              { repositories: ["team/*"], users: ["bob"], actions: ["pull"] },
            ],
          },
        },
      };
      try {
        await withSeeded(config, async (server, _seeded, browser) => {
          // Anonymous may pull nothing: no list, the sign-in form instead.
          const { page, problems } = await watchedPage(browser);
          await page.setViewport({ width: 1200, height: 800 });
          await page.goto(`${server.url}/ui/team/api`);
          assert.equal(new URL(page.url()).pathname, "/ui/-/sign-in");
          assert.equal(await page.$("#repositories"), null);
          assert.doesNotMatch(await page.$eval("main", (m) => m.textContent ?? ""), /team\/api/);
          // The form is labelled and keyboard-driven: focus starts in the user name.
          assert.equal(await page.evaluate(() => document.activeElement?.id), "user");
          assert.equal(
            await page.$eval("#password", (i) => (i as HTMLInputElement).labels?.[0]?.textContent),
            "Password",
          );
          if (mode === "htpasswd") await screenshot(page, "sign-in");
          await signIn(page, "wrong");
          assert.match(await page.$eval('[role="alert"]', (p) => p.textContent ?? ""), /Wrong/);

          await page.$eval("#user", (i) => (i as HTMLInputElement).value = "");
          await signIn(page, "bob");
          // Back on the page asked for, as bob: no delete buttons (he may only pull).
          assert.equal(new URL(page.url()).pathname, "/ui/team/api");
          assert.match(await page.$eval("header .who", (w) => w.textContent ?? ""), /bob/);
          assert.equal(await page.$$eval('a[href*="/-/delete/"]', (as) => as.length), 0);
          const cookies = await page.cookies();
          const session = cookies.find((c) => c.name === "berth_session");
          assert.ok(session?.httpOnly, "HttpOnly session cookie");
          assert.equal(session?.sameSite, "Strict");
          assert.equal(await page.evaluate(() => document.cookie), "");
          await follow(page, "a.brand");
          assert.deepEqual(await visibleRows(page, "repositories"), ["team/api", "team/web"]);
          await follow(page, "form.sign-out button");
          assert.equal(new URL(page.url()).pathname, "/ui/-/sign-in");

          await signIn(page, "alice");
          assert.equal(new URL(page.url()).pathname, "/ui/");
          assert.equal((await visibleRows(page, "repositories")).length, 6);
          await follow(page, 'a[href="/ui/team/api"]');
          await follow(page, 'a[aria-label="Delete tag latest"]');
          await follow(page, "form button.danger");
          assert.match(await page.$eval("p.notice", (p) => p.textContent ?? ""), /Deleted latest/);
          assert.deepEqual(problems, []);
        });
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
}

Deno.test({
  name: "ui browser: Basic credentials the browser sends are honoured too",
  ignore,
  ...LOOSE,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "berth-ui-auth-" });
    const path = `${dir}/htpasswd`;
    await Deno.writeTextFile(path, `bob:${bcrypt.hashSync(PASSWORDS.bob, 4)}\n`);
    const config: Partial<Config> = {
      auth: {
        htpasswd: { realm: "berth-ui", path },
        policy: { rules: [{ repositories: ["team/*"], users: ["bob"], actions: ["pull"] }] },
      },
    };
    try {
      await withSeeded(config, async (server, _seeded, browser) => {
        const bob = await watchedPage(browser);
        await bob.page.authenticate({ username: "bob", password: PASSWORDS.bob });
        await bob.page.setExtraHTTPHeaders({
          Authorization: `Basic ${btoa(`bob:${PASSWORDS.bob}`)}`,
        });
        assert.equal((await bob.page.goto(`${server.url}/ui/`))?.status(), 200);
        assert.deepEqual(await visibleRows(bob.page, "repositories"), ["team/api", "team/web"]);
        assert.match(await bob.page.$eval("header .who", (w) => w.textContent ?? ""), /bob/);
        assert.deepEqual(bob.problems, []);
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
