/**
 * The UI's session cookie: its attributes over TLS, expiry, and a key per process.
 *
 * @module
 */
import assert from "node:assert/strict";
import { SESSION_SECONDS, Sessions } from "../../src/ui/session.ts";
import { safeNext } from "../../src/ui/format.ts";

function requestWith(setCookie: string): Request {
  return new Request("https://registry.test/ui/", {
    headers: { Cookie: `other=1; ${setCookie.slice(0, setCookie.indexOf(";"))}` },
  });
}

Deno.test("ui session: Secure over TLS, expires, and only this process's key signs", async () => {
  let now = Date.parse("2026-12-03T06:00:00Z");
  const sessions = new Sessions(() => now);
  const set = await sessions.signIn("bob", true);
  assert.match(set, /; HttpOnly; SameSite=Strict; Secure$/);
  assert.equal(await sessions.user(requestWith(set)), "bob");
  assert.equal(await new Sessions(() => now).user(requestWith(set)), undefined);
  now += SESSION_SECONDS * 1000 - 1000;
  assert.equal(await sessions.user(requestWith(set)), "bob");
  now += 1000;
  assert.equal(await sessions.user(requestWith(set)), undefined);
  assert.equal(await sessions.user(new Request("https://registry.test/ui/")), undefined);
  assert.equal(await sessions.user(requestWith("berth_session=a.b;")), undefined);
});

Deno.test("ui session: the page after sign-in is a UI path of this origin", () => {
  assert.equal(safeNext("/ui/team/api?sort=size"), "/ui/team/api?sort=size");
  for (const bad of [null, "https://evil.example/ui/", "//evil.example/ui/", "/v2/", "/ui/\\x"]) {
    assert.equal(safeNext(bad), "/ui/", String(bad));
  }
});
