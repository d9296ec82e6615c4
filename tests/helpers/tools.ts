/**
 * External client tools for e2e tests (skopeo, umoci, docker-registry, ...): whether one is
 * installed, and running it. Missing tools skip a test on a developer's machine and fail it in CI.
 *
 * @module
 */

/** Whether a command is on the PATH. */
export function hasTool(name: string): boolean {
  try {
    const { success } = new Deno.Command("sh", {
      args: ["-c", `command -v ${name}`],
      stdout: "null",
      stderr: "null",
    }).outputSync();
    return success;
  } catch {
    return false;
  }
}

/**
 * The `ignore` value for a `Deno.test` that needs `tools`: `true` (skip, with a message) when one
 * is missing on a developer's machine. Under `CI=true` a missing tool throws, so CI cannot skip.
 */
export function skipWithout(...tools: string[]): boolean {
  const missing = tools.filter((t) => !hasTool(t));
  if (missing.length === 0) return false;
  const message = `e2e: ${missing.join(", ")} not installed`;
  if (Deno.env.get("CI") === "true") throw new Error(`${message}, and CI must not skip e2e tests`);
  console.warn(`${message}: skipping (apt-get install ${missing.join(" ")})`);
  return true;
}

/** Run a command; throws with its output when it fails. Returns stdout. */
export async function run(
  cmd: string,
  args: string[],
  options: { cwd?: string; env?: Record<string, string>; stdin?: string } = {},
): Promise<string> {
  const child = new Deno.Command(cmd, {
    args,
    stdout: "piped",
    stderr: "piped",
    stdin: options.stdin === undefined ? "null" : "piped",
    ...(options.cwd && { cwd: options.cwd }),
    ...(options.env && { env: options.env }),
  }).spawn();
  if (options.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(options.stdin));
    await writer.close();
  }
  const { code, stdout, stderr } = await child.output();
  const out = new TextDecoder().decode(stdout);
  if (code !== 0) {
    throw new Error(
      `${cmd} ${args.join(" ")} exited ${code}\n${out}\n${new TextDecoder().decode(stderr)}`,
    );
  }
  return out;
}
