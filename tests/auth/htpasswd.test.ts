/**
 * The htpasswd user file: bcrypt off the main thread, remembered logins, the dummy hash unknown
 * users are compared with, reloads that fail loudly, and the rule for a deleted file.
 *
 * @module
 */
import assert from "node:assert/strict";
import { BcryptPool } from "../../src/auth/bcrypt_pool.ts";
import {
  dummyHash,
  Htpasswd,
  MISSING_GRACE_MS,
  parseHtpasswd,
  readHtpasswdSync,
  RELOAD_CHECK_MS,
} from "../../src/auth/htpasswd.ts";
import { withTempDir } from "../helpers/temp.ts";
import { run } from "../helpers/tools.ts";

/** An htpasswd line for `user` with bcrypt cost `cost` (made by `htpasswd -B`). */
async function entry(user: string, password: string, cost: number): Promise<string> {
  const out = await new Deno.Command("htpasswd", {
    args: ["-nbB", "-C", String(cost), user, password],
    stdout: "piped",
  }).output();
  return new TextDecoder().decode(out.stdout).trim();
}

/** Records of a log, by message. */
function logs() {
  const records: { level: string; msg: string; fields: Record<string, unknown> }[] = [];
  return {
    records,
    log: (level: string, msg: string, fields: Record<string, unknown> = {}) =>
      void records.push({ level, msg, fields }),
  };
}

Deno.test("bcrypt pool: a comparison runs off the main thread (timers keep firing)", async () => {
  const pool = new BcryptPool();
  try {
    const hash = (await entry("u", "pw", 12)).split(":")[1]!;
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    const started = performance.now();
    const results = await Promise.all([pool.compare("pw", hash), pool.compare("nope", hash)]);
    const elapsed = performance.now() - started;
    clearInterval(timer);
    assert.deepEqual(results, [true, false]);
    assert.equal(pool.computations, 2);
    // bcryptjs on the main thread yields every 100 ms at best: a few ticks in the whole run.
    assert.ok(ticks >= Math.min(20, elapsed / 20), `${ticks} ticks in ${elapsed} ms`);
  } finally {
    pool.close();
  }
});

Deno.test("htpasswd: a remembered login runs no bcrypt; a wrong password is never remembered", async () => {
  await withTempDir("berth-htpasswd-", async (dir) => {
    const path = `${dir}/htpasswd`;
    await Deno.writeTextFile(path, `${await entry("bob", "secret", 5)}\n`);
    const pool = new BcryptPool();
    try {
      const users = new Htpasswd(path, { compare: (p, h) => pool.compare(p, h) });
      assert.equal(await users.verify("bob", "secret"), true);
      assert.equal(pool.computations, 1);
      assert.equal(await users.verify("bob", "secret"), true);
      assert.equal(pool.computations, 1);
      assert.equal(await users.verify("bob", "wrong"), false);
      assert.equal(await users.verify("bob", "wrong"), false);
      assert.equal(pool.computations, 3);
    } finally {
      pool.close();
    }
  });
});

Deno.test("htpasswd: unknown users are compared with a dummy hash of the entries' usual cost", async () => {
  await withTempDir("berth-htpasswd-", async (dir) => {
    const path = `${dir}/htpasswd`;
    const lines = [
      await entry("alice", "a", 5),
      await entry("bob", "b", 7),
      await entry("carol", "c", 7),
    ];
    await Deno.writeTextFile(path, lines.join("\n") + "\n");
    const pool = new BcryptPool();
    const compared: string[] = [];
    try {
      const users = new Htpasswd(path, {
        compare: (p, h) => {
          compared.push(h);
          return pool.compare(p, h);
        },
      });
      assert.equal(await users.verify("mallory", "a"), false);
      assert.equal(await users.verify("mallory", "b"), false);
      const known = [...parseHtpasswd(lines.join("\n")).values()];
      for (const hash of compared) {
        assert.match(hash, /^\$2y\$07\$[./A-Za-z0-9]{53}$/);
        assert.ok(!known.includes(hash), "an unknown user is compared with a user's hash");
      }
    } finally {
      pool.close();
    }
  });
  assert.match(dummyHash(new Map()), /^\$2y\$10\$/);
});

Deno.test("htpasswd: a broken reload is logged as an error and keeps the users read before", async () => {
  await withTempDir("berth-htpasswd-", async (dir) => {
    const path = `${dir}/htpasswd`;
    await Deno.writeTextFile(path, `${await entry("bob", "secret", 5)}\n`);
    const pool = new BcryptPool();
    let now = 1_000_000;
    const { records, log } = logs();
    try {
      const users = new Htpasswd(path, {
        compare: (p, h) => pool.compare(p, h),
        log,
        now: () => now,
      });
      await Deno.writeTextFile(path, "bob:plaintext-password\n");
      now += RELOAD_CHECK_MS + 1;
      assert.equal(await users.verify("bob", "secret"), true);
      const failure = records.find((r) => r.msg.startsWith("htpasswd reload failed"));
      assert.equal(failure?.level, "error");
      assert.equal(failure?.fields.path, path);
      assert.match(String(failure?.fields.reason), /line 1/);
      // Logged once per broken version of the file, not on every check.
      now += RELOAD_CHECK_MS + 1;
      await users.verify("bob", "secret");
      assert.equal(records.filter((r) => r.msg.startsWith("htpasswd reload failed")).length, 1);
      // A good file is taken again.
      await Deno.writeTextFile(path, `${await entry("carol", "c", 5)}\n`);
      now += RELOAD_CHECK_MS + 1;
      assert.equal(await users.verify("carol", "c"), true);
      assert.equal(await users.verify("bob", "secret"), false);
      assert.ok(records.some((r) => r.msg === "htpasswd reloaded" && r.fields.users === 1));
    } finally {
      pool.close();
    }
  });
});

Deno.test("htpasswd: a deleted file keeps its users for the grace period, then nobody logs in", async () => {
  await withTempDir("berth-htpasswd-", async (dir) => {
    const path = `${dir}/htpasswd`;
    const line = await entry("bob", "secret", 5);
    await Deno.writeTextFile(path, `${line}\n`);
    const pool = new BcryptPool();
    let now = 1_000_000;
    const { records, log } = logs();
    try {
      const users = new Htpasswd(path, {
        compare: (p, h) => pool.compare(p, h),
        log,
        now: () => now,
      });
      assert.equal(await users.verify("bob", "secret"), true);
      await Deno.remove(path);
      now += RELOAD_CHECK_MS + 1;
      assert.equal(await users.verify("bob", "secret"), true, "within the grace period");
      assert.equal(records.at(-1)?.level, "error");
      now += MISSING_GRACE_MS;
      assert.equal(await users.verify("bob", "secret"), false, "remembered logins are dropped");
      assert.equal(users.size, 0);
      assert.equal(
        records.at(-1)?.msg,
        "htpasswd file missing: no user can log in until it is back",
      );
      await Deno.writeTextFile(path, `${line}\n`);
      now += RELOAD_CHECK_MS + 1;
      assert.equal(await users.verify("bob", "secret"), true, "the file is back");
    } finally {
      pool.close();
    }
  });
});

Deno.test("htpasswd: a path that is a directory, missing or malformed is refused in one line naming the key", async () => {
  await withTempDir("berth-htpasswd-", async (dir) => {
    assert.throws(() => readHtpasswdSync(dir), /^Error: auth\.htpasswd\.path: .* is not a file/);
    assert.throws(() => readHtpasswdSync(`${dir}/none`), /auth\.htpasswd\.path: .* does not exist/);
    await Deno.writeTextFile(`${dir}/bad`, "bob:{SHA}xyz\n");
    assert.throws(() => readHtpasswdSync(`${dir}/bad`), /auth\.htpasswd\.path: .*: line 1: /);
    await run("htpasswd", ["-cbB", `${dir}/good`, "bob", "b"]);
    assert.equal(readHtpasswdSync(`${dir}/good`).size, 1);
  });
});
