/**
 * The shipped program checks passwords in worker threads that run the program's own module (the
 * bundle spawns itself): a login works, a wrong password is refused, and SIGTERM still exits 0.
 * Under `BERTH_TEST_COMMAND` (tests/ship/bundle.test.ts) this runs against the bundle.
 *
 * @module
 */
import assert from "node:assert/strict";
import { spawnServer } from "../helpers/server.ts";
import { withTempDir } from "../helpers/temp.ts";

/** `tester:tester` (bcrypt cost 4). */
const HTPASSWD = "tester:$2y$04$F3Nyg8G.Rsgf1MdB9Y9QIOW5qerx7uZuaK5k7o/oTOoKGJymgoUjW\n";

Deno.test("ship: Basic logins are checked in worker threads of the shipped program", async () => {
  await withTempDir("berth-ship-auth-", async (dir) => {
    await Deno.writeTextFile(`${dir}/htpasswd`, HTPASSWD);
    const server = await spawnServer({
      dataDir: `${dir}/data`,
      args: ["--htpasswd", `${dir}/htpasswd`],
    });
    try {
      const login = async (password: string) => {
        const response = await fetch(`${server.url}/v2/`, {
          headers: { Authorization: `Basic ${btoa(`tester:${password}`)}` },
        });
        await response.body?.cancel();
        return response.status;
      };
      assert.equal(await login("tester"), 200);
      assert.equal(await login("wrong"), 401);
      assert.equal(await login("tester"), 200);
    } finally {
      const status = await server.stop("SIGTERM");
      assert.equal(status.code, 0, "SIGTERM exits 0 with password workers running");
    }
  });
});
