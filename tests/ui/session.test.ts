/**
 * The UI's session cookie: its attributes over TLS, expiry, a key per process without
 * `http.secret`, and one shared by every process that has the same secret.
 *
 * @module
 */
import assert from "node:assert/strict";
import { ConfigError, configToEnv } from "../../src/config_file.ts";
import { parseConfig } from "../../src/config_yaml.ts";
import { CSRF_SECONDS, CsrfTokens } from "../../src/ui/csrf.ts";
import { SESSION_SECONDS, Sessions } from "../../src/ui/session.ts";
import { safeNext } from "../../src/ui/format.ts";

function requestWith(setCookie: string): Request {
  return new Request("https://registry.test/ui/", {
    headers: { Cookie: `other=1; ${setCookie.slice(0, setCookie.indexOf(";"))}` },
  });
}

Deno.test("ui session: Secure over TLS, expires, and only this process's key signs", async () => {
  let now = Date.parse("2026-12-03T06:00:00Z");
  const sessions = new Sessions({ now: () => now });
  const set = await sessions.signIn("bob", true);
  assert.match(set, /; HttpOnly; SameSite=Strict; Secure$/);
  assert.equal(await sessions.user(requestWith(set)), "bob");
  assert.equal(await new Sessions({ now: () => now }).user(requestWith(set)), undefined);
  now += SESSION_SECONDS * 1000 - 1000;
  assert.equal(await sessions.user(requestWith(set)), "bob");
  now += 1000;
  assert.equal(await sessions.user(requestWith(set)), undefined);
  assert.equal(await sessions.user(new Request("https://registry.test/ui/")), undefined);
  assert.equal(await sessions.user(requestWith("berth_session=a.b;")), undefined);
});

Deno.test("ui session: processes with the same http.secret accept each other's cookies and forms", async () => {
  const secret = "a shared secret of replicas";
  const first = new Sessions({ secret });
  const set = await first.signIn("bob", false);
  // Another replica, or this one after a restart.
  assert.equal(await new Sessions({ secret }).user(requestWith(set)), "bob");
  assert.equal(await new Sessions({ secret: `${secret}!` }).user(requestWith(set)), undefined);
  assert.equal(await new Sessions().user(requestWith(set)), undefined);
  assert.equal(await first.user(requestWith(await new Sessions().signIn("bob", false))), undefined);

  const token = await new CsrfTokens(secret).token("bob");
  assert.equal(await new CsrfTokens(secret).verify(token, "bob"), true);
  assert.equal(await new CsrfTokens(secret).verify(token, "alice"), false);
  assert.equal(await new CsrfTokens(`${secret}!`).verify(token, "bob"), false);
  assert.equal(await new CsrfTokens().verify(await new CsrfTokens().token("bob"), "bob"), false);
  // One secret, separate keys: a form token is no session signature and the other way round.
  const mac = set.slice(set.indexOf(".") + 1, set.indexOf(";"));
  const payload = set.slice("berth_session=".length, set.indexOf("."));
  const tokenMac = token.slice(token.indexOf(".") + 1);
  assert.notEqual(mac, tokenMac);
  const asCookie = `berth_session=${payload}.${tokenMac};`;
  assert.equal(await first.user(requestWith(asCookie)), undefined);
});

Deno.test("ui form tokens expire, and their expiry cannot be moved", async () => {
  let now = Date.parse("2026-12-03T06:00:00Z");
  const tokens = new CsrfTokens("0123456789abcdef-shared", () => now);
  const token = await tokens.token("bob");
  now += (CSRF_SECONDS - 1) * 1000;
  assert.equal(await tokens.verify(token, "bob"), true);
  const [expires, mac] = token.split(".") as [string, string];
  assert.equal(await tokens.verify(`${Number(expires) + 3600}.${mac}`, "bob"), false);
  now += 1000;
  assert.equal(await tokens.verify(token, "bob"), false);
  for (const bad of ["", mac, `${expires}.`, `x.${mac}`, `${expires}.${mac}.1`]) {
    assert.equal(await tokens.verify(bad, "bob"), false, bad);
  }
});

Deno.test("ui session: http.secret comes from the file or REGISTRY_HTTP_SECRET; short ones are refused", () => {
  const secret = "0123456789abcdef-from-file";
  assert.equal(parseConfig(`version: 0.1\nhttp:\n  secret: ${secret}\n`).config.httpSecret, secret);
  const env = { REGISTRY_HTTP_SECRET: "0123456789abcdef-from-env" };
  assert.equal(
    parseConfig(`version: 0.1\nhttp:\n  secret: ${secret}\n`, { env }).config.httpSecret,
    env.REGISTRY_HTTP_SECRET,
  );
  assert.equal(parseConfig("").config.httpSecret, undefined);
  assert.throws(() => parseConfig("version: 0.1\nhttp:\n  secret: short\n"), (error) => {
    assert.ok(error instanceof ConfigError);
    assert.match(error.message, /^http\.secret: at least 16 characters/);
    return true;
  });
  assert.deepEqual(configToEnv({ httpSecret: secret }), { REGISTRY_HTTP_SECRET: secret });
});

Deno.test("ui session: the page after sign-in is a UI path of this origin", () => {
  assert.equal(safeNext("/ui/team/api?sort=size"), "/ui/team/api?sort=size");
  for (const bad of [null, "https://evil.example/ui/", "//evil.example/ui/", "/v2/", "/ui/\\x"]) {
    assert.equal(safeNext(bad), "/ui/", String(bad));
  }
});
