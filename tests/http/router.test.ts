/**
 * The router: the route table's cases (found with parameters, 405 with the allowed methods, 404),
 * the greedy repository name of distribution's patterns, and the same answers as `URLPattern` for
 * every pattern of the table over many paths.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { Handler } from "../../src/http/context.ts";
import { type Match, Router } from "../../src/http/router.ts";

const NAME = ":name(.+)";

/** A handler that says which route and method it is (compared by identity). */
function handler(): Handler {
  return () => new Response(null);
}

/** The registry's table shape (src/http/routes.ts), with one distinct handler per entry. */
const TABLE: [string, string, string[]][] = [
  ["base", "/v2/", ["GET", "HEAD"]],
  ["manifests", `/v2/${NAME}/manifests/:reference`, ["GET", "HEAD", "PUT", "DELETE"]],
  ["uploads", `/v2/${NAME}/blobs/uploads/`, ["POST"]],
  ["uploads", `/v2/${NAME}/blobs/uploads/:id`, ["GET", "PATCH", "PUT", "DELETE"]],
  ["blobs", `/v2/${NAME}/blobs/:digest`, ["GET", "HEAD", "DELETE"]],
  ["catalog", "/v2/_catalog", ["GET", "HEAD"]],
  ["tags", `/v2/${NAME}/tags/list`, ["GET", "HEAD"]],
  ["referrers", `/v2/${NAME}/referrers/:digest`, ["GET", "HEAD"]],
  ["admin", "/admin/gc", ["POST"]],
  ["ui", "/ui/:path(.*)", ["GET", "HEAD", "POST"]],
  ["ui", "/ui", ["GET", "HEAD"]],
  ["ui", "/", ["GET", "HEAD"]],
];

function build(): { router: Router; handlers: Map<Handler, string> } {
  const router = new Router();
  const handlers = new Map<Handler, string>();
  for (const [label, pattern, methods] of TABLE) {
    const byMethod: Record<string, Handler> = {};
    for (const method of methods) {
      const h = handler();
      handlers.set(h, `${pattern} ${method}`);
      byMethod[method] = h;
    }
    router.route(label, pattern, byMethod);
  }
  return { router, handlers };
}

/** A match as plain data: `found pattern method {params}`, `method label allowed`, `none`. */
function describe(match: Match, handlers: Map<Handler, string>): unknown {
  if (match.kind === "found") {
    return { found: handlers.get(match.handler), label: match.label, params: { ...match.params } };
  }
  if (match.kind === "method") return { method: match.label, allowed: match.allowed };
  return "none";
}

const { router, handlers } = build();
const SHA = `sha256:${"a".repeat(64)}`;

const CASES: [string, string, unknown][] = [
  ["GET", "/v2/", { found: "/v2/ GET", label: "base", params: {} }],
  ["HEAD", "/v2/", { found: "/v2/ HEAD", label: "base", params: {} }],
  ["POST", "/v2/", { method: "base", allowed: ["GET", "HEAD"] }],
  ["GET", "/v2", "none"],
  ["GET", "/v2//", "none"],
  ["HEAD", "/v2/library/ubuntu/manifests/latest", {
    found: `/v2/${NAME}/manifests/:reference HEAD`,
    label: "manifests",
    params: { name: "library/ubuntu", reference: "latest" },
  }],
  // The name is greedy: everything before the fixed tail, as distribution's pattern.
  ["GET", "/v2/a/manifests/b/manifests/c", {
    found: `/v2/${NAME}/manifests/:reference GET`,
    label: "manifests",
    params: { name: "a/manifests/b", reference: "c" },
  }],
  ["PUT", `/v2/a/manifests/${SHA}`, {
    found: `/v2/${NAME}/manifests/:reference PUT`,
    label: "manifests",
    params: { name: "a", reference: SHA },
  }],
  ["PATCH", "/v2/a/manifests/x", {
    method: "manifests",
    allowed: ["GET", "HEAD", "PUT", "DELETE"],
  }],
  ["GET", "/v2/a/manifests/", "none"],
  ["GET", "/v2/a/manifests/x/", "none"],
  ["GET", "/v2//manifests/x", "none"],
  // Empty components are kept in the name (the name check then refuses them with 400).
  ["GET", "/v2/a//b/manifests/x", {
    found: `/v2/${NAME}/manifests/:reference GET`,
    label: "manifests",
    params: { name: "a//b", reference: "x" },
  }],
  // Values stay percent-encoded, as the URL gives them.
  ["GET", "/v2/a%2Fb/manifests/x%20y", {
    found: `/v2/${NAME}/manifests/:reference GET`,
    label: "manifests",
    params: { name: "a%2Fb", reference: "x%20y" },
  }],
  ["POST", "/v2/a/b/blobs/uploads/", {
    found: `/v2/${NAME}/blobs/uploads/ POST`,
    label: "uploads",
    params: { name: "a/b" },
  }],
  ["GET", "/v2/a/b/blobs/uploads/", { method: "uploads", allowed: ["POST"] }],
  ["PATCH", "/v2/a/blobs/uploads/1234", {
    found: `/v2/${NAME}/blobs/uploads/:id PATCH`,
    label: "uploads",
    params: { name: "a", id: "1234" },
  }],
  ["POST", "/v2/a/blobs/uploads/1234", {
    method: "uploads",
    allowed: ["GET", "PATCH", "PUT", "DELETE"],
  }],
  // Without the trailing slash `uploads` is a digest (then refused by the blob handler).
  ["GET", "/v2/a/blobs/uploads", {
    found: `/v2/${NAME}/blobs/:digest GET`,
    label: "blobs",
    params: { name: "a", digest: "uploads" },
  }],
  ["HEAD", `/v2/a/blobs/${SHA}`, {
    found: `/v2/${NAME}/blobs/:digest HEAD`,
    label: "blobs",
    params: { name: "a", digest: SHA },
  }],
  ["PUT", `/v2/a/blobs/${SHA}`, { method: "blobs", allowed: ["GET", "HEAD", "DELETE"] }],
  ["GET", "/v2/_catalog", { found: "/v2/_catalog GET", label: "catalog", params: {} }],
  ["GET", "/v2/_catalog/tags/list", {
    found: `/v2/${NAME}/tags/list GET`,
    label: "tags",
    params: { name: "_catalog" },
  }],
  ["GET", "/v2/a/b/c/tags/list", {
    found: `/v2/${NAME}/tags/list GET`,
    label: "tags",
    params: { name: "a/b/c" },
  }],
  ["GET", "/v2/a/tags/list/", "none"],
  ["GET", "/v2/tags/list", "none"],
  ["GET", `/v2/a/referrers/${SHA}`, {
    found: `/v2/${NAME}/referrers/:digest GET`,
    label: "referrers",
    params: { name: "a", digest: SHA },
  }],
  ["POST", "/admin/gc", { found: "/admin/gc POST", label: "admin", params: {} }],
  ["GET", "/admin/gc", { method: "admin", allowed: ["POST"] }],
  ["GET", "/ui/", { found: "/ui/:path(.*) GET", label: "ui", params: { path: "" } }],
  ["GET", "/ui/repo/a/b", {
    found: "/ui/:path(.*) GET",
    label: "ui",
    params: { path: "repo/a/b" },
  }],
  ["GET", "/ui", { found: "/ui GET", label: "ui", params: {} }],
  ["GET", "/", { found: "/ GET", label: "ui", params: {} }],
  ["GET", "/nothing", "none"],
  ["GET", "/v3/a/manifests/x", "none"],
];

for (const [method, path, expected] of CASES) {
  Deno.test(`router: ${method} ${path}`, () => {
    assert.deepEqual(describe(router.match(method, path), handlers), expected);
  });
}

Deno.test("router: the same route and parameters as URLPattern for every path", () => {
  const patterns = TABLE.map(([, pattern]) => new URLPattern({ pathname: pattern }));
  const pieces = ["", "a", "v2", "manifests", "blobs", "uploads", "tags", "list", "referrers"];
  const more = ["_catalog", "ui", "admin", "gc", SHA, "x%2Fy", "a.b", "x-y_z"];
  const words = [...pieces, ...more];
  let compared = 0;
  // Every path of up to four segments over these words (the first and last from all of them),
  // and some longer ones.
  const paths: string[] = [];
  const grow = (prefix: string, depth: number) => {
    paths.push(prefix === "" ? "/" : prefix);
    if (depth === 0) return;
    for (const word of depth === 4 || depth === 1 ? words : pieces) {
      grow(`${prefix}/${word}`, depth - 1);
    }
  };
  grow("", 4);
  for (const tail of ["manifests/x", "blobs/uploads/", "blobs/uploads/x", "tags/list", "x//"]) {
    paths.push(`/v2/a/b/${tail}`, `/v2/a/b/c/d/e/${tail}`, `/v2/a//b/${tail}`, `/ui/a/${tail}`);
  }
  for (const path of paths) {
    const match = router.match("GET", path);
    const index = patterns.findIndex((pattern) => pattern.test({ pathname: path }));
    if (index < 0) {
      assert.equal(match.kind, "none", path);
      continue;
    }
    compared++;
    const [label, pattern] = TABLE[index]!;
    assert.notEqual(match.kind, "none", path);
    if (match.kind === "none") continue;
    assert.equal(match.label, label, path);
    if (match.kind === "found") {
      assert.equal(handlers.get(match.handler), `${pattern} GET`, path);
      const groups = patterns[index]!.exec({ pathname: path })!.pathname.groups;
      assert.deepEqual({ ...match.params }, { ...groups }, path);
    }
  }
  assert.ok(compared > 1000, `compared only ${compared} routed paths`);
});

Deno.test("router: a pattern form it cannot match is refused when added", () => {
  assert.throws(() => new Router().route("x", "/v2/:name([a-z]+)", {}), /unsupported/);
  assert.throws(() => new Router().route("x", "/v2/:a(.+)/:b(.+)", {}), /at most one/);
  assert.throws(() => new Router().route("x", "v2", {}), /must start/);
  assert.throws(() => new Router().route("x", "/v2/*", {}), /unsupported/);
});
