/**
 * The router: each path pattern is added once with a label and its handlers by method; matching
 * tells the handler with its parameters, or which methods the path allows (405), or nothing
 * (404), and the label of the path (a fixed set, for metrics).
 *
 * Patterns use `URLPattern`'s syntax for the few forms the route table needs, matched on the
 * path split once on `/` (no regular expression runs per request):
 * - literal segments (`/v2/`, `manifests`);
 * - `:id`: one segment, not empty;
 * - `:name(.+)` / `:path(.*)`: one or more whole segments joined by `/` (`.+`: not empty), at
 *   most one per pattern. Everything after it is single segments, so `URLPattern`'s greedy match
 *   is the segments before that fixed tail.
 *
 * Values are the path as given (still percent-encoded), as `URLPattern` gives them.
 *
 * @module
 */

import type { Handler, Params } from "./context.ts";

export type { Handler, Params, RequestContext } from "./context.ts";

/** One segment of a pattern. */
type Segment =
  | { kind: "literal"; text: string }
  | { kind: "param"; name: string }
  | { kind: "rest"; name: string; empty: boolean };

/** One path pattern and its handlers. */
interface Route {
  label: string;
  /** Segments before the rest parameter (all of them when there is none). */
  head: Segment[];
  /** The rest parameter, when any. */
  rest: { name: string; empty: boolean } | undefined;
  /** Segments after the rest parameter. */
  tail: Segment[];
  handlers: Record<string, Handler>;
  allowed: string[];
}

/** The result of matching a request. */
export type Match =
  | { kind: "found"; label: string; handler: Handler; params: Params }
  | { kind: "method"; label: string; allowed: string[] }
  | { kind: "none" };

const NONE: Match = { kind: "none" };
const PARAMETER = /^:([A-Za-z_]\w*)(?:\((\.\+|\.\*)\))?$/;

/** An ordered route table. */
export class Router {
  readonly #routes: Route[] = [];

  /**
   * Add a path pattern with its handlers by method; earlier patterns win. Throws on a pattern
   * form the router does not support.
   */
  route(label: string, pathname: string, handlers: Record<string, Handler>): this {
    if (!pathname.startsWith("/")) throw new Error(`route ${pathname}: must start with /`);
    const segments = pathname.split("/").map((part): Segment => {
      if (!part.startsWith(":")) {
        if (/[:()*+?{}\\]/.test(part)) throw new Error(`route ${pathname}: unsupported ${part}`);
        return { kind: "literal", text: part };
      }
      const parsed = PARAMETER.exec(part);
      if (!parsed) throw new Error(`route ${pathname}: unsupported parameter ${part}`);
      const name = parsed[1]!;
      if (parsed[2] === undefined) return { kind: "param", name };
      return { kind: "rest", name, empty: parsed[2] === ".*" };
    });
    const at = segments.findIndex((segment) => segment.kind === "rest");
    if (at >= 0 && segments.findLastIndex((segment) => segment.kind === "rest") !== at) {
      throw new Error(`route ${pathname}: at most one multi-segment parameter`);
    }
    const rest = at >= 0 ? segments[at] as Extract<Segment, { kind: "rest" }> : undefined;
    this.#routes.push({
      label,
      head: at >= 0 ? segments.slice(0, at) : segments,
      rest: rest && { name: rest.name, empty: rest.empty },
      tail: at >= 0 ? segments.slice(at + 1) : [],
      handlers,
      allowed: Object.keys(handlers),
    });
    return this;
  }

  /** Find the route for a method and a URL path (as `URL.pathname` gives it). */
  match(method: string, path: string): Match {
    const parts = path.split("/");
    for (const route of this.#routes) {
      const params = matchRoute(route, parts);
      if (!params) continue;
      const handler = Object.hasOwn(route.handlers, method) ? route.handlers[method] : undefined;
      if (handler) return { kind: "found", label: route.label, handler, params };
      return { kind: "method", label: route.label, allowed: route.allowed };
    }
    return NONE;
  }
}

/** Match single segments of a pattern against `parts` from `from`; false when one differs. */
function matchSegments(
  segments: Segment[],
  parts: string[],
  from: number,
  params: Params,
): boolean {
  for (let i = 0; i < segments.length; i++) {
    const value = parts[from + i]!;
    const segment = segments[i]!;
    if (segment.kind === "literal") {
      if (value !== segment.text) return false;
    } else {
      if (value === "") return false;
      params[segment.name] = value;
    }
  }
  return true;
}

/** The parameters when `parts` (a path split on `/`) match the route, else `undefined`. */
function matchRoute(route: Route, parts: string[]): Params | undefined {
  const { head, rest, tail } = route;
  const count = parts.length;
  if (rest ? count < head.length + 1 + tail.length : count !== head.length) return undefined;
  // Literals first: most routes are told apart by them, before any parameter object is made.
  if (!literalsMatch(head, parts, 0) || !literalsMatch(tail, parts, count - tail.length)) {
    return undefined;
  }
  const params: Params = {};
  if (!matchSegments(head, parts, 0, params)) return undefined;
  if (!rest) return params;
  const end = count - tail.length;
  if (!matchSegments(tail, parts, end, params)) return undefined;
  const value = end - head.length === 1
    ? parts[head.length]!
    : parts.slice(head.length, end).join("/");
  if (value === "" && !rest.empty) return undefined;
  params[rest.name] = value;
  return params;
}

function literalsMatch(segments: Segment[], parts: string[], from: number): boolean {
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i]!;
    if (segment.kind === "literal" && parts[from + i] !== segment.text) return false;
  }
  return true;
}
