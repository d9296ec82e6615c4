/**
 * The authorization policy: globs, users, groups, anonymous rules, and the default.
 *
 * @module
 */
import { newContext } from "../../src/http/context.ts";
import assert from "node:assert/strict";
import { AccessControl } from "../../src/auth/access_control.ts";
import { globToRegExp, Policy } from "../../src/auth/policy.ts";
import type { RegistryError } from "../../src/errors.ts";
import { basic, USERS, writeHtpasswd } from "./fixtures.ts";

Deno.test("policy: * stays within a path component, ** crosses them, ? is one character", () => {
  assert.ok(globToRegExp("team/*").test("team/app"));
  assert.ok(!globToRegExp("team/*").test("team/app/sub"));
  assert.ok(globToRegExp("team/**").test("team/app/sub"));
  assert.ok(globToRegExp("**").test("a/b/c"));
  assert.ok(globToRegExp("app-?").test("app-1"));
  assert.ok(!globToRegExp("app-?").test("app-12"));
  assert.ok(!globToRegExp("a.b").test("axb"), "dots are literal");
  assert.ok(!globToRegExp("team/*").test("xteam/app"), "anchored");
});

Deno.test("policy: grants are the union of rules matching the user, a group, or anyone", () => {
  const policy = new Policy({
    groups: { ops: ["olga"] },
    rules: [
      { repositories: ["pub/**"], anonymous: true, actions: ["pull"] },
      { repositories: ["team/*"], users: ["tom"], actions: ["pull", "push"] },
      { repositories: ["**"], groups: ["ops"], actions: ["*"] },
      { repositories: ["shared/*"], users: ["*"], actions: ["pull"] },
    ],
  });
  assert.deepEqual([...policy.actions(undefined, "pub/a/b")], ["pull"]);
  assert.deepEqual([...policy.actions(undefined, "team/x")], []);
  assert.deepEqual([...policy.actions("tom", "team/x")].sort(), ["pull", "push"]);
  assert.deepEqual([...policy.actions("tom", "pub/a")], ["pull"], "anonymous rules apply to users");
  assert.deepEqual([...policy.actions("tom", "shared/x")], ["pull"]);
  assert.deepEqual([...policy.actions("tom", "other")], []);
  assert.deepEqual([...policy.actions("olga", "any/thing")].sort(), ["delete", "pull", "push"]);
  assert.equal(policy.allows("tom", "team/x", ["pull", "push"]), true);
  assert.equal(policy.allows("tom", "team/x", ["delete"]), false);
});

Deno.test("policy: without rules, known users may do everything and anonymous callers nothing", () => {
  const policy = new Policy();
  assert.deepEqual([...policy.actions("anyone", "x")].sort(), ["delete", "pull", "push"]);
  assert.deepEqual([...policy.actions(undefined, "x")], []);
});

Deno.test("policy: admin endpoints need a user named in admins (or in an @group there)", async () => {
  const policy = new Policy({ groups: { ops: ["olga"] }, rules: [], admins: ["root", "@ops"] });
  assert.equal(policy.isAdmin("root"), true);
  assert.equal(policy.isAdmin("olga"), true);
  assert.equal(policy.isAdmin("tom"), false);
  assert.equal(policy.isAdmin(undefined), false);

  const dir = await Deno.makeTempDir({ prefix: "berth-admin-" });
  try {
    const path = await writeHtpasswd(dir);
    const access = new AccessControl({
      htpasswd: { realm: "r", path },
      policy: { groups: { admins: ["alice"] }, rules: [], admins: ["@admins"] },
    });
    const check = (auth?: string) => {
      const request = new Request("http://registry.test/admin/gc", {
        method: "POST",
        headers: auth ? { Authorization: auth } : {},
      });
      const ctx = newContext(request, "test", "local");
      ctx.route = "admin";
      return access.check(ctx);
    };
    await check(basic("alice", USERS.alice));
    await assert.rejects(check(basic("bob", USERS.bob)), (e: RegistryError) => e.status === 403);
    await assert.rejects(check(), (e: RegistryError) => e.status === 401);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("policy: pull prefixes are the literal starts of the patterns that give the user pull", () => {
  const policy = new Policy({
    groups: { ops: ["olga"] },
    rules: [
      { repositories: ["pub/**", "pub/docs/*"], anonymous: true, actions: ["pull"] },
      { repositories: ["team/*"], users: ["tom"], actions: ["pull", "push"] },
      { repositories: ["drop/*"], users: ["tom"], actions: ["push"] },
      { repositories: ["**"], groups: ["ops"], actions: ["*"] },
      { repositories: ["app-?/x"], users: ["*"], actions: ["pull"] },
    ],
  });
  assert.deepEqual(policy.pullPrefixes(undefined), ["pub/"]);
  assert.deepEqual(policy.pullPrefixes("tom"), ["app-", "pub/", "team/"]);
  assert.deepEqual(policy.pullPrefixes("olga"), [""]);
  assert.deepEqual(new Policy().pullPrefixes(undefined), []);
  assert.deepEqual(new Policy().pullPrefixes("anyone"), [""]);
});
