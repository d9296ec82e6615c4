/**
 * The web UI over HTTP against a real server: redirects, the three pages from pushed content,
 * pagination over the catalog, deletes with their confirmation and CSRF checks, auth on and off,
 * and escaping of stored payloads.
 *
 * @module
 */
import assert from "node:assert/strict";
import bcrypt from "bcryptjs";
import { createHash } from "node:crypto";
import { createApp } from "../../src/app.ts";
import { type Config, makeConfig } from "../../src/config.ts";
import { digestBytes } from "../../src/oci/digest.ts";
import { memoryStore } from "../../src/storage/open_store.ts";
import { PUSH_TIMES_PER_ROW, SCAN_BUDGET } from "../../src/ui/data.ts";
import { LIST_PAGE_SIZE } from "../../src/ui/ui.ts";
import { writeSelfSignedCert } from "../auth/fixtures.ts";
import { startServer, type TestServer } from "../helpers/server.ts";
import { PAYLOADS, type Seeded, seedRegistry } from "./fixtures.ts";

/** A server with the fixtures pushed, optionally restarted with other settings on its data. */
async function withSeeded(
  config: Partial<Config>,
  body: (server: TestServer, seeded: Seeded) => Promise<void>,
): Promise<void> {
  const dataDir = await Deno.makeTempDir({ prefix: "berth-ui-" });
  try {
    const seeding = await startServer({ dataDir });
    const seeded = await seedRegistry(seeding.url);
    await seeding.close();
    const server = await startServer({ dataDir, config });
    try {
      await body(server, seeded);
    } finally {
      await server.close();
    }
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
}

async function page(
  server: TestServer,
  path: string,
  init: RequestInit = {},
): Promise<{ status: number; headers: Headers; text: string }> {
  const response = await fetch(server.url + path, { redirect: "manual", ...init });
  return { status: response.status, headers: response.headers, text: await response.text() };
}

/** The keys of a page's table rows (repository names or tags), in order. */
function rowKeys(text: string): string[] {
  return [...text.matchAll(/<tr data-key="([^"]+)"/g)].map((m) => m[1]!);
}

/** An app over a memory store (no socket), closed after `body`. */
async function withMemoryApp(
  body: (app: ReturnType<typeof createApp>, store: ReturnType<typeof memoryStore>) => Promise<void>,
): Promise<void> {
  const store = memoryStore();
  const app = createApp(makeConfig({ storage: "memory" }), {
    store,
    logError: () => {},
    log: () => {},
  });
  try {
    await body(app, store);
  } finally {
    await app.close();
  }
}

/** The CSRF token of a delete confirmation page. */
function tokenOf(text: string): string {
  const token = /name="csrf" value="([^"]+)"/.exec(text)?.[1];
  assert.ok(token, "the confirmation form carries a token");
  return token;
}

function postDelete(
  server: TestServer,
  path: string,
  token: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Headers; text: string }> {
  return page(server, path, {
    method: "POST",
    headers: {
      "Content-Type": "application/x-www-form-urlencoded",
      Origin: server.url,
      "Sec-Fetch-Site": "same-origin",
      ...headers,
    },
    body: new URLSearchParams({ csrf: token }).toString(),
  });
}

Deno.test("ui: / and /ui redirect to /ui/; assets are versioned and cached", async () => {
  await withSeeded({}, async (server) => {
    for (const path of ["/", "/ui"]) {
      const response = await page(server, path);
      assert.equal(response.status, 303);
      assert.equal(response.headers.get("Location"), "/ui/");
    }
    const list = await page(server, "/ui/");
    assert.equal(list.status, 200);
    assert.equal(list.headers.get("Content-Type"), "text/html; charset=utf-8");
    assert.match(list.headers.get("Content-Security-Policy") ?? "", /script-src 'self'/);
    // The stylesheet is inline, allowed by its hash; no other inline style would apply.
    const css = /<style>([^<]*)<\/style>/.exec(list.text)?.[1];
    const js = /src="(\/ui\/-\/app\.js\?v=[0-9a-f]+)"/.exec(list.text)?.[1];
    assert.ok(css && js);
    assert.match(css, /prefers-color-scheme: dark/);
    const hash = createHash("sha256").update(css).digest("base64");
    assert.ok(list.headers.get("Content-Security-Policy")?.includes(`style-src 'sha256-${hash}'`));
    const script = await page(server, js, { method: "HEAD" });
    assert.equal(script.status, 200);
    assert.equal(script.headers.get("Content-Type"), "text/javascript; charset=utf-8");
    assert.match(script.headers.get("Cache-Control") ?? "", /immutable/);
    assert.equal(script.text, "");
    const again = await page(server, js, {
      headers: { "If-None-Match": script.headers.get("ETag") ?? "" },
    });
    assert.equal(again.status, 304);
    const head = await page(server, "/ui/library/alpine", { method: "HEAD" });
    assert.equal(head.status, 200);
    assert.equal(head.text, "");
    assert.equal((await page(server, "/ui/NOT_A_NAME")).status, 404);
    assert.equal((await page(server, "/ui/library/alpine/-/manifest/nope")).status, 404);
    assert.equal((await page(server, "/ui/nothing/here")).status, 404);
  });
});

Deno.test("ui: the list shows every repository with tag counts and filters on the server", async () => {
  await withSeeded({}, async (server, seeded) => {
    const list = await page(server, "/ui/");
    for (const name of seeded.repositories) {
      assert.match(list.text, new RegExp(`<a href="/ui/${name}">${name}</a>`));
    }
    assert.match(
      list.text,
      /<a href="\/ui\/team\/api">team\/api<\/a><\/td>\s*<td class="num"[^>]*>4<\/td>/,
    );
    assert.match(list.text, /<time datetime="[^"]+"[^>]*>just now<\/time>/);
    const filtered = await page(server, "/ui/?q=team");
    const names = rowKeys(filtered.text);
    assert.deepEqual(names, ["team/api", "team/web"]);
  });
});

Deno.test("ui: the repository page lists tags with digests, sizes, platforms; sorts by link", async () => {
  await withSeeded({}, async (server, seeded) => {
    const repo = await page(server, "/ui/library/alpine");
    assert.equal(repo.status, 200);
    assert.match(repo.text, />latest<\/a>/);
    assert.match(repo.text, />3\.20<\/a>/);
    assert.match(repo.text, />linux\/amd64<\/a>/);
    assert.match(repo.text, />linux\/arm64\/v8<\/a>/);
    assert.ok(repo.text.includes(`data-copy="${seeded.index}"`));
    assert.ok(
      repo.text.includes(
        `/ui/library/alpine/-/manifest/${encodeURIComponent(seeded.platforms[0]!)}`,
      ),
    );
    const byName = await page(server, "/ui/team/api?sort=name&order=desc");
    const tags = rowKeys(byName.text);
    assert.deepEqual(tags, ["v2.0.0", "v1.1.0", "v1.0.0", "latest"]);
    const bySize = await page(server, "/ui/team/api?sort=size&order=asc");
    const sized = rowKeys(bySize.text);
    // Layer sizes grow with the fixtures' seed: v1.0.0 < v1.1.0 < v2.0.0 = latest.
    assert.deepEqual(sized, ["v1.0.0", "v1.1.0", "latest", "v2.0.0"]);
    assert.match(bySize.text, /aria-sort="ascending"/);
  });
});

Deno.test("ui: the manifest page shows config, layers, annotations, platforms and referrers", async () => {
  await withSeeded({}, async (server, seeded) => {
    const index = await page(server, "/ui/library/alpine/-/manifest/latest");
    assert.match(index.text, /Index \(multi-platform\)/);
    for (const digest of seeded.platforms) {
      assert.ok(
        index.text.includes(`href="/ui/library/alpine/-/manifest/${encodeURIComponent(digest)}"`),
      );
    }
    assert.match(index.text, /podman pull 127\.0\.0\.1:\d+\/library\/alpine:latest/);
    assert.ok(index.text.includes(`docker pull ${server.host}/library/alpine@${seeded.index}`));
    const image = await page(server, `/ui/library/alpine/-/manifest/${seeded.platforms[0]}`);
    assert.equal(image.status, 200);
    for (
      const expected of [
        /<dt>Created<\/dt>\s*<dd>2026-11-30T12:00:00Z<\/dd>/,
        /<dt>Platform<\/dt>\s*<dd>linux\/amd64<\/dd>/,
        /\[&quot;\/docker-entrypoint\.sh&quot;\]/,
        /org\.opencontainers\.image\.version/,
        /History \(2 steps\)/,
        /application\/vnd\.oci\.image\.layer\.v1\.tar\+gzip/,
        /Total size/,
      ]
    ) assert.match(image.text, expected);
    const order = ["Signatures", "SBOMs", "Attestations"].map((t) =>
      image.text.indexOf(`<h3>${t} `)
    );
    assert.ok(
      order.every((i) => i > 0) && order[0]! < order[1]! && order[1]! < order[2]!,
      String(order),
    );
    for (const digest of Object.values(seeded.referrers)) {
      assert.ok(
        image.text.includes(`href="/ui/library/alpine/-/manifest/${encodeURIComponent(digest)}"`),
      );
    }
    const signature = await page(
      server,
      `/ui/library/alpine/-/manifest/${seeded.referrers.signature}`,
    );
    assert.match(signature.text, /<dt>Kind<\/dt>\s*<dd>Artifact<\/dd>/);
    assert.ok(signature.text.includes(seeded.platforms[0]!), "links its subject");
  });
});

Deno.test("ui: stored HTML/JS payloads are escaped on every page", async () => {
  await withSeeded({}, async (server) => {
    for (const path of ["/ui/", "/ui/xss/app", "/ui/xss/app/-/manifest/v1"]) {
      const { text } = await page(server, path);
      for (const payload of PAYLOADS) assert.ok(!text.includes(payload), `${path}: ${payload}`);
      assert.doesNotMatch(text, /<(img|svg|iframe)\b/i);
    }
    const manifest = await page(server, "/ui/xss/app/-/manifest/v1");
    assert.ok(manifest.text.includes("&lt;img src=x onerror=&quot;window.__xss"));
  });
});

Deno.test("ui: delete asks for confirmation, checks origin and token, then deletes", async () => {
  await withSeeded({}, async (server) => {
    const repo = await page(server, "/ui/team/api");
    assert.match(repo.text, /href="\/ui\/team\/api\/-\/delete\/v1\.0\.0"/);
    const confirm = await page(server, "/ui/team/api/-/delete/v1.0.0");
    assert.equal(confirm.status, 200);
    assert.match(confirm.text, /Delete tag <strong>v1\.0\.0<\/strong>/);
    const token = tokenOf(confirm.text);
    const path = "/ui/team/api/-/delete/v1.0.0";
    assert.equal((await postDelete(server, path, "forged")).status, 403);
    assert.equal(
      (await postDelete(server, path, token, { "Sec-Fetch-Site": "cross-site" })).status,
      403,
    );
    assert.equal(
      (await postDelete(server, path, token, { Origin: "http://evil.example" })).status,
      403,
    );
    assert.equal((await postDelete(server, path, token, { Origin: "null" })).status, 403);
    assert.equal(
      (await fetch(`${server.url}/v2/team/api/manifests/v1.0.0`, { method: "HEAD" })).status,
      200,
    );
    const done = await postDelete(server, path, token);
    assert.equal(done.status, 303);
    assert.equal(done.headers.get("Location"), "/ui/team/api?deleted=v1.0.0");
    assert.equal(
      (await fetch(`${server.url}/v2/team/api/manifests/v1.0.0`, { method: "HEAD" })).status,
      404,
    );
    const after = await page(server, "/ui/team/api?deleted=v1.0.0");
    assert.match(after.text, /Deleted v1\.0\.0\./);
    assert.doesNotMatch(after.text, /data-key="v1\.0\.0"/);
    // By digest: the manifest and its tags go.
    const digest = (await fetch(`${server.url}/v2/team/api/manifests/v2.0.0`, { method: "HEAD" }))
      .headers.get("Docker-Content-Digest")!;
    const byDigest = await page(server, `/ui/team/api/-/delete/${digest}`);
    assert.match(
      byDigest.text,
      /these tags go with it: <strong>latest<\/strong>, <strong>v2\.0\.0<\/strong>/,
    );
    const gone = await postDelete(
      server,
      `/ui/team/api/-/delete/${digest}`,
      tokenOf(byDigest.text),
    );
    assert.equal(gone.status, 303);
    assert.equal(
      (await fetch(`${server.url}/v2/team/api/manifests/latest`, { method: "HEAD" })).status,
      404,
    );
    assert.equal((await postDelete(server, path, token)).status, 404);
  });
});

Deno.test("ui: with deletes disabled there are no delete links and a POST is refused", async () => {
  await withSeeded({ deleteEnabled: false }, async (server) => {
    const repo = await page(server, "/ui/team/api");
    assert.doesNotMatch(repo.text, /-\/delete\//);
    assert.equal((await page(server, "/ui/team/api/-/delete/v1.0.0")).status, 403);
    assert.equal((await postDelete(server, "/ui/team/api/-/delete/v1.0.0", "x")).status, 403);
    assert.equal(
      (await fetch(`${server.url}/v2/team/api/manifests/v1.0.0`, { method: "HEAD" })).status,
      200,
    );
  });
});

const PASSWORDS = { alice: "alice-pw", bob: "bob-pw", eve: "eve-pw" };

/** An htpasswd file (bcrypt, low cost for speed) and a policy: alice admin, bob team/*, anonymous library/**. */
async function authConfig(dir: string): Promise<Partial<Config>> {
  const path = `${dir}/htpasswd`;
  await Deno.writeTextFile(
    path,
    Object.entries(PASSWORDS).map(([u, p]) => `${u}:${bcrypt.hashSync(p, 4)}\n`).join(""),
  );
  return {
    auth: {
      htpasswd: { realm: "berth-ui", path },
      policy: {
        rules: [
          { repositories: ["**"], users: ["alice"], actions: ["*"] },
          { repositories: ["team/*"], users: ["bob"], actions: ["pull"] },
          { repositories: ["library/**"], anonymous: true, actions: ["pull"] },
        ],
      },
    },
  };
}

function basic(user: keyof typeof PASSWORDS): Record<string, string> {
  return { Authorization: `Basic ${btoa(`${user}:${PASSWORDS[user]}`)}` };
}

Deno.test("ui auth: users see what they may pull, delete links where they may delete", async () => {
  const dir = await Deno.makeTempDir({ prefix: "berth-ui-auth-" });
  try {
    await withSeeded(await authConfig(dir), async (server) => {
      const anonymous = await page(server, "/ui/");
      assert.equal(anonymous.status, 200);
      assert.deepEqual(rowKeys(anonymous.text), ["library/alpine"]);
      assert.match(anonymous.text, /href="\/ui\/-\/sign-in"/);
      const signIn = await page(server, "/ui/-/sign-in");
      assert.equal(signIn.status, 200);
      assert.match(signIn.text, /<form class="sign-in" method="post" action="\/ui\/-\/sign-in">/);
      assert.match(signIn.text, /<label for="password">Password<\/label>/);
      const signedIn = await page(server, "/ui/-/sign-in", { headers: basic("bob") });
      assert.equal(signedIn.status, 303);

      const bob = await page(server, "/ui/", { headers: basic("bob") });
      assert.deepEqual(rowKeys(bob.text), ["library/alpine", "team/api", "team/web"]);
      assert.match(bob.text, /Signed in as <strong>bob<\/strong>/);
      const bobRepo = await page(server, "/ui/team/api", { headers: basic("bob") });
      assert.equal(bobRepo.status, 200);
      assert.doesNotMatch(bobRepo.text, /-\/delete\//);
      assert.equal((await page(server, "/ui/xss/app", { headers: basic("bob") })).status, 403);
      assert.equal(
        (await page(server, "/ui/xss/app/-/manifest/v1", { headers: basic("bob") })).status,
        403,
      );
      assert.equal(
        (await page(server, "/ui/team/api/-/delete/v1.0.0", { headers: basic("bob") })).status,
        403,
      );
      // Anonymous callers are sent to sign in for what they may not see, and come back.
      const hidden = await page(server, "/ui/team/api");
      assert.equal(hidden.status, 303);
      assert.equal(hidden.headers.get("Location"), "/ui/-/sign-in?next=%2Fui%2Fteam%2Fapi");
      assert.doesNotMatch(hidden.text, /team\/api/);
      const wrong = await page(server, "/ui/", {
        headers: { Authorization: `Basic ${btoa("bob:nope")}` },
      });
      assert.equal(wrong.status, 401);

      const alice = await page(server, "/ui/", { headers: basic("alice") });
      assert.equal(rowKeys(alice.text).length, 6);
      const aliceRepo = await page(server, "/ui/team/api", { headers: basic("alice") });
      assert.match(aliceRepo.text, /-\/delete\/v1\.0\.0/);
      // A token is bound to its user: bob cannot use alice's, and cannot delete with his own.
      const confirm = await page(server, "/ui/team/api/-/delete/v1.0.0", {
        headers: basic("alice"),
      });
      const token = tokenOf(confirm.text);
      assert.equal(
        (await postDelete(server, "/ui/team/api/-/delete/v1.0.0", token, basic("bob"))).status,
        403,
      );
      assert.equal(
        (await postDelete(server, "/ui/team/api/-/delete/v1.0.0", token, basic("eve"))).status,
        403,
      );
      const done = await postDelete(server, "/ui/team/api/-/delete/v1.0.0", token, basic("alice"));
      assert.equal(done.status, 303);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ui auth: anonymous callers who may pull nothing are sent to the sign-in form", async () => {
  const dir = await Deno.makeTempDir({ prefix: "berth-ui-auth-" });
  try {
    const config = await authConfig(dir);
    config.auth!.policy!.rules = config.auth!.policy!.rules.filter((r) => !r.anonymous);
    await withSeeded(config, async (server) => {
      const list = await page(server, "/ui/");
      assert.equal(list.status, 303);
      assert.equal(list.headers.get("Location"), "/ui/-/sign-in");
      assert.doesNotMatch(list.text, /library\/alpine/);
      const repo = await page(server, "/ui/library/alpine");
      assert.equal(repo.status, 303);
      assert.doesNotMatch(repo.text, /library\/alpine/);
      const manifest = await page(server, "/ui/library/alpine/-/manifest/latest");
      assert.equal(manifest.status, 303);
      assert.equal((await page(server, "/ui/", { headers: basic("eve") })).status, 200);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ui: the list pages through a large catalog, 100 per page, under 100 KB", async () => {
  await withMemoryApp(async (app, store) => {
    const digest = digestBytes(new TextEncoder().encode("m"));
    const names = Array.from(
      { length: 250 },
      (_, i) => `org${i % 7}/service-${String(i).padStart(4, "0")}`,
    );
    for (const name of names) await store.putTag(name, "latest", digest);
    const sorted = [...names].sort();
    const get = async (path: string) => {
      const response = await app.handler(new Request(`http://registry.test${path}`));
      return { status: response.status, text: await response.text() };
    };
    const seen: string[] = [];
    let path = "/ui/";
    for (let pages = 0; pages < 5; pages++) {
      const { status, text } = await get(path);
      assert.equal(status, 200);
      assert.ok(new TextEncoder().encode(text).byteLength < 100_000, "page weight");
      seen.push(...rowKeys(text));
      const next = /rel="next" href="([^"]+)"/.exec(text)?.[1];
      if (!next) break;
      path = next.replaceAll("&amp;", "&");
    }
    assert.deepEqual(seen, sorted);
    assert.equal(LIST_PAGE_SIZE, 100);
    const filtered = await get("/ui/?q=org3%2F");
    const rows = rowKeys(filtered.text);
    assert.deepEqual(rows, sorted.filter((n) => n.startsWith("org3/")));
  });
});

Deno.test("ui: a filter reads a bounded part of the catalog per page and links to the rest", async () => {
  await withMemoryApp(async (app, store) => {
    const digest = digestBytes(new TextEncoder().encode("m"));
    const count = SCAN_BUDGET + 700;
    const names = Array.from({ length: count }, (_, i) => `repo-${String(i).padStart(5, "0")}`);
    for (const name of names) await store.putTag(name, "latest", digest);
    const get = async (path: string) =>
      await (await app.handler(new Request(`http://registry.test${path}`))).text();
    // Only names past the budget match: the first page is empty and says where it stopped.
    const wanted = names.slice(-3);
    const first = await get(`/ui/?q=${"repo-0" + String(count - 3).slice(0, 3)}`);
    assert.deepEqual(rowKeys(first).filter((n) => wanted.includes(n)), []);
    assert.match(first, /Searched part of the catalog/);
    const next = /rel="next" href="([^"]+)"/.exec(first)?.[1]?.replaceAll("&amp;", "&");
    assert.ok(next);
    const second = await get(next);
    assert.ok(wanted.every((n) => rowKeys(second).includes(n)), rowKeys(second).join(","));
    assert.doesNotMatch(second, /rel="next"/);
  });
});

Deno.test("ui: the list reads push times of repositories with few tags, links the others", async () => {
  await withMemoryApp(async (app, store) => {
    const digest = digestBytes(new TextEncoder().encode("m"));
    for (let i = 0; i < PUSH_TIMES_PER_ROW; i++) await store.putTag("few/tags", `v${i}`, digest);
    for (let i = 0; i <= PUSH_TIMES_PER_ROW; i++) await store.putTag("many/tags", `v${i}`, digest);
    const text = await (await app.handler(new Request("http://registry.test/ui/"))).text();
    const row = (name: string) =>
      new RegExp(`<tr data-key="${name}"[\\s\\S]*?</tr>`).exec(text)?.[0] ?? "";
    assert.match(
      row("few/tags"),
      new RegExp(`>${PUSH_TIMES_PER_ROW}</td>[\\s\\S]*<time datetime=`),
    );
    assert.match(row("many/tags"), new RegExp(`>${PUSH_TIMES_PER_ROW + 1}</td>`));
    assert.doesNotMatch(row("many/tags"), /<time/);
    assert.match(row("many/tags"), /href="\/ui\/many\/tags\?sort=pushed&amp;order=desc"/);
  });
});

/** Post the sign-in form (with the token of a fresh form); returns the answer. */
async function postSignIn(
  server: TestServer,
  fields: Record<string, string>,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Headers; text: string }> {
  const form = await page(server, "/ui/-/sign-in");
  return await page(server, "/ui/-/sign-in", {
    method: "POST",
    headers: {
      "Content-Type": "application/x-www-form-urlencoded",
      Origin: server.url,
      "Sec-Fetch-Site": "same-origin",
      ...headers,
    },
    body: new URLSearchParams({ csrf: tokenOf(form.text), ...fields }).toString(),
  });
}

/** The `name=value` part of a `Set-Cookie` header. */
function cookieOf(response: { headers: Headers }): string {
  const set = response.headers.get("Set-Cookie") ?? "";
  return set.slice(0, set.indexOf(";"));
}

for (const mode of ["htpasswd", "token"] as const) {
  Deno.test(`ui auth (${mode}): the sign-in form sets a signed session cookie; sign-out ends it`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "berth-ui-auth-" });
    try {
      const config = await authConfig(dir);
      if (mode === "token") config.auth!.token = { service: "berth-test", issuer: "berth-test" };
      await withSeeded(config, async (server) => {
        // A wrong password shows the form again and sets nothing.
        const wrong = await postSignIn(server, { user: "bob", password: "nope", next: "/ui/" });
        // (200: a browser logs a 401 page as an error; the form is the answer.)
        assert.equal(wrong.status, 200);
        assert.equal(wrong.headers.get("Set-Cookie"), null);
        assert.match(wrong.text, /Wrong user name or password/);
        assert.match(wrong.text, /name="user"[^>]*value="bob"/);
        // Without the form's token, or from another site, nothing is checked.
        const forged = await page(server, "/ui/-/sign-in", {
          method: "POST",
          headers: { "Content-Type": "application/x-www-form-urlencoded", Origin: server.url },
          body: new URLSearchParams({ user: "bob", password: PASSWORDS.bob }).toString(),
        });
        assert.equal(forged.status, 403);
        const crossSite = await postSignIn(
          server,
          { user: "bob", password: PASSWORDS.bob },
          { Origin: "https://evil.example", "Sec-Fetch-Site": "cross-site" },
        );
        assert.equal(crossSite.status, 403);
        assert.equal(crossSite.headers.get("Set-Cookie"), null);

        // The right password: a cookie, and back to the page asked for (never off-site).
        const ok = await postSignIn(server, {
          user: "bob",
          password: PASSWORDS.bob,
          next: "/ui/team/api?sort=name",
        });
        assert.equal(ok.status, 303);
        assert.equal(ok.headers.get("Location"), "/ui/team/api?sort=name");
        const set = ok.headers.get("Set-Cookie") ?? "";
        assert.match(set, /^berth_session=[\w-]+\.[\w-]+; /);
        for (const attribute of ["Path=/ui/", "HttpOnly", "SameSite=Strict", "Max-Age=28800"]) {
          assert.ok(set.includes(attribute), `${attribute} in ${set}`);
        }
        assert.ok(!set.includes("Secure"), "no Secure flag over plain HTTP");
        const cookie = { Cookie: cookieOf(ok) };
        const bob = await page(server, "/ui/", { headers: cookie });
        assert.deepEqual(rowKeys(bob.text), ["library/alpine", "team/api", "team/web"]);
        assert.match(bob.text, /Signed in as <strong>bob<\/strong>/);
        assert.match(bob.text, /action="\/ui\/-\/sign-out"/);
        const bobRepo = await page(server, "/ui/team/api", { headers: cookie });
        assert.equal(bobRepo.status, 200);
        assert.doesNotMatch(bobRepo.text, /-\/delete\//);
        assert.equal((await page(server, "/ui/xss/app", { headers: cookie })).status, 403);
        // The cookie is the UI's only: the API does not read it.
        const api = await fetch(`${server.url}/v2/team/api/tags/list`, { headers: cookie });
        await api.body?.cancel();
        assert.equal(api.status, 401);
        const offSite = await postSignIn(server, {
          user: "bob",
          password: PASSWORDS.bob,
          next: "//evil.example/ui/",
        });
        assert.equal(offSite.headers.get("Location"), "/ui/");

        // A changed cookie is ignored (the user name is signed).
        const [payload, mac] = cookieOf(ok).slice("berth_session=".length).split(".");
        const claims = JSON.parse(atob(payload!.replace(/-/g, "+").replace(/_/g, "/")));
        const forgedPayload = btoa(JSON.stringify({ ...claims, u: "alice" }))
          .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
        const tampered = await page(server, "/ui/", {
          headers: { Cookie: `berth_session=${forgedPayload}.${mac}` },
        });
        assert.deepEqual(rowKeys(tampered.text), ["library/alpine"]);
        assert.doesNotMatch(tampered.text, /Signed in as/);

        // alice signs in and deletes with her session; sign-out needs her form's token.
        const alice = {
          Cookie: cookieOf(await postSignIn(server, { user: "alice", password: PASSWORDS.alice })),
        };
        const confirm = await page(server, "/ui/team/api/-/delete/v1.0.0", { headers: alice });
        assert.equal(confirm.status, 200);
        const token = tokenOf(confirm.text);
        assert.equal(
          (await postDelete(server, "/ui/team/api/-/delete/v1.0.0", token, cookie)).status,
          403,
        );
        assert.equal(
          (await postDelete(server, "/ui/team/api/-/delete/v1.0.0", token, alice)).status,
          303,
        );
        assert.equal((await postDelete(server, "/ui/-/sign-out", "x", alice)).status, 403);
        const out = await postDelete(server, "/ui/-/sign-out", token, alice);
        assert.equal(out.status, 303);
        assert.match(
          out.headers.get("Set-Cookie") ?? "",
          /^berth_session=; Path=\/ui\/; Max-Age=0/,
        );
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("ui auth: replicas sharing http.secret accept each other's sessions and forms", async () => {
  const dir = await Deno.makeTempDir({ prefix: "berth-ui-replicas-" });
  try {
    const config = { ...(await authConfig(dir)), httpSecret: "replicas share this secret" };
    await withSeeded(config, async (first) => {
      const second = await startServer({ dataDir: first.dataDir, config });
      const alone = await startServer({ dataDir: first.dataDir, config: await authConfig(dir) });
      try {
        const signedIn = await postSignIn(first, { user: "bob", password: PASSWORDS.bob });
        assert.equal(signedIn.status, 303);
        const cookie = { Cookie: cookieOf(signedIn) };
        // The other replica (or this one restarted) knows bob; a process without the secret not.
        const there = await page(second, "/ui/", { headers: cookie });
        assert.match(there.text, /Signed in as <strong>bob<\/strong>/);
        const elsewhere = await page(alone, "/ui/", { headers: cookie });
        assert.doesNotMatch(elsewhere.text, /Signed in as/);
        // A form one replica rendered is accepted by the other.
        const token = tokenOf((await page(first, "/ui/", { headers: cookie })).text);
        assert.equal((await postDelete(alone, "/ui/-/sign-out", token, cookie)).status, 403);
        const out = await postDelete(second, "/ui/-/sign-out", token, cookie);
        assert.equal(out.status, 303);
        assert.match(out.headers.get("Set-Cookie") ?? "", /^berth_session=; /);
      } finally {
        await alone.close();
        await second.close();
      }
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ui auth: without htpasswd there is no sign-in form", async () => {
  await withSeeded({}, async (server) => {
    const signIn = await page(server, "/ui/-/sign-in");
    assert.equal(signIn.status, 404);
    assert.doesNotMatch(signIn.text, /type="password"/);
  });
});

Deno.test("ui auth: with only an external token issuer, the sign-in page sends users to their client", async () => {
  const dir = await Deno.makeTempDir({ prefix: "berth-ui-issuer-" });
  try {
    const { cert } = await writeSelfSignedCert(dir);
    const token = {
      realm: "https://issuer.test/token",
      service: "s",
      issuer: "i",
      rootcertbundle: cert,
    };
    await withSeeded({ auth: { token } }, async (server) => {
      const signIn = await page(server, "/ui/-/sign-in");
      assert.equal(signIn.status, 404);
      assert.doesNotMatch(signIn.text, /type="password"/);
      assert.match(signIn.text, /token service[\s\S]*docker login, podman login/);
      const list = await page(server, "/ui/");
      assert.doesNotMatch(list.text, /Sign in/);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ui auth: with token auth and htpasswd, the browser signs in with Basic to the same users", async () => {
  const dir = await Deno.makeTempDir({ prefix: "berth-ui-auth-" });
  try {
    const config = await authConfig(dir);
    config.auth!.token = { service: "berth-test", issuer: "berth-test" };
    await withSeeded(config, async (server) => {
      const bob = await page(server, "/ui/", { headers: basic("bob") });
      assert.equal(bob.status, 200);
      assert.deepEqual(rowKeys(bob.text), ["library/alpine", "team/api", "team/web"]);
      // The API itself still answers with the Bearer challenge of the token endpoint.
      const api = await fetch(`${server.url}/v2/team/api/tags/list`);
      await api.body?.cancel();
      assert.match(api.headers.get("WWW-Authenticate") ?? "", /^Bearer realm=/);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
