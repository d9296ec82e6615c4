/**
 * Failed-login limits: per user name and per client address, 429 with a message and
 * `Retry-After`; remembered logins keep working; the limiter's windows end.
 *
 * @module
 */
import assert from "node:assert/strict";
import { DEFAULT_LOGIN_LIMITS, LoginLimiter } from "../../src/auth/login_limiter.ts";
import { startServer } from "../helpers/server.ts";
import { withTempDir } from "../helpers/temp.ts";
import { basic, USERS, writeHtpasswd } from "./fixtures.ts";
import { run } from "../helpers/tools.ts";

async function get(url: string, auth: string) {
  const response = await fetch(`${url}/v2/`, { headers: { Authorization: auth } });
  const text = await response.text();
  return {
    status: response.status,
    retryAfter: response.headers.get("Retry-After"),
    error: text ? JSON.parse(text).errors?.[0] : undefined,
  };
}

Deno.test("login limits: wrong passwords are limited per user, then per address, with 429 and Retry-After", async () => {
  await withTempDir("berth-limits-", async (dir) => {
    const path = await writeHtpasswd(dir);
    const server = await startServer({ config: { auth: { htpasswd: { realm: "r", path } } } });
    try {
      const { perUser, perAddress } = DEFAULT_LOGIN_LIMITS;
      assert.equal((await get(server.url, basic("alice", USERS.alice))).status, 200);
      for (let i = 0; i < perUser; i++) {
        assert.equal((await get(server.url, basic("bob", `wrong-${i}`))).status, 401);
      }
      const blocked = await get(server.url, basic("bob", "wrong-again"));
      assert.equal(blocked.status, 429);
      assert.equal(blocked.error.code, "TOOMANYREQUESTS");
      assert.match(blocked.error.message, /too many failed logins for this user; retry in \d+ s/);
      assert.ok(Number(blocked.retryAfter) > 0 && Number(blocked.retryAfter) <= 60);
      // The right password does not get through a blocked user name (no bcrypt is spent).
      assert.equal((await get(server.url, basic("bob", USERS.bob))).status, 429);
      // Other names from the same address until the address's own limit.
      for (let i = perUser; i < perAddress; i++) {
        assert.equal((await get(server.url, basic(`nobody-${i}`, "x"))).status, 401);
      }
      const address = await get(server.url, basic("carol", USERS.carol));
      assert.equal(address.status, 429);
      assert.match(address.error.message, /too many failed logins for this address/);
      // A login remembered from before still works: a guesser cannot lock out active users.
      assert.equal((await get(server.url, basic("alice", USERS.alice))).status, 200);
    } finally {
      await server.close();
    }
  });
});

Deno.test("login limits: a window ends, and a success forgets the user's failures", () => {
  let now = 0;
  const limiter = new LoginLimiter({ perUser: 2, perAddress: 3, windowMs: 10_000 }, () => now);
  assert.equal(limiter.failed("bob", "10.0.0.1"), undefined);
  assert.equal(limiter.failed("bob", "10.0.0.1"), "user", "the failure that reaches the limit");
  assert.deepEqual(limiter.refusal("bob", "10.0.0.2"), { reason: "user", retryAfterSeconds: 10 });
  assert.equal(limiter.refusal("carol", "10.0.0.2"), undefined);
  now = 4_000;
  assert.equal(limiter.failed("carol", "10.0.0.1"), "address");
  assert.deepEqual(limiter.refusal("dave", "10.0.0.1"), {
    reason: "address",
    retryAfterSeconds: 6,
  });
  now = 10_000;
  assert.equal(limiter.refusal("bob", "10.0.0.1"), undefined);
  limiter.failed("bob", "10.0.0.3");
  limiter.succeeded("bob");
  limiter.failed("bob", "10.0.0.3");
  assert.equal(limiter.refusal("bob", "10.0.0.4"), undefined);
});

Deno.test("login limits: wrong-password loops do not hold up a remembered login (bcrypt runs in workers)", async () => {
  await withTempDir("berth-limits-", async (dir) => {
    // Cost 13: one comparison is about half a second of CPU (unknown users cost as much), several
    // times what the six remembered logins below take even on a loaded machine.
    const path = `${dir}/htpasswd`;
    await run("htpasswd", ["-cbB", "-C", "13", path, "alice", USERS.alice]);
    const server = await startServer({ config: { auth: { htpasswd: { realm: "r", path } } } });
    try {
      const alice = basic("alice", USERS.alice);
      assert.equal((await get(server.url, alice)).status, 200);
      let wrongAnswered = 0;
      const loops = [1, 2, 3, 4].map(async (k) => {
        for (let i = 0; i < 2; i++) {
          assert.equal((await get(server.url, basic(`user${k}`, `wrong-${i}`))).status, 401);
          wrongAnswered++;
        }
      });
      // Remembered logins answer while the comparisons run: none of those has finished yet.
      // (On the main thread, bcrypt's slices held each of these up behind every comparison.)
      for (let i = 0; i < 6; i++) assert.equal((await get(server.url, alice)).status, 200);
      const answeredMeanwhile = wrongAnswered;
      await Promise.all(loops);
      assert.equal(answeredMeanwhile, 0, "valid logins waited for wrong-password checks");
    } finally {
      await server.close();
    }
  });
});
