/**
 * A small `URLPattern` router: each path pattern is added once with a label and its handlers by
 * method; matching tells the handler with its parameters, or which methods the path allows (405),
 * or nothing (404), and the label of the path (a fixed set, for metrics).
 *
 * Each pattern is tried only when the path holds its literal parts (`/manifests/`, ...), and
 * once for all its methods: a manifest HEAD runs one `exec` instead of four.
 *
 * @module
 */

import type { Handler, Params } from "./context.ts";

export type { Handler, Params, RequestContext } from "./context.ts";

/** One path pattern and its handlers. */
interface Route {
  label: string;
  pattern: URLPattern;
  /** Text every matching path contains. */
  literals: string[];
  handlers: Record<string, Handler>;
}

/** The result of matching a request. */
export type Match =
  | { kind: "found"; label: string; handler: Handler; params: Params }
  | { kind: "method"; label: string; allowed: string[] }
  | { kind: "none" };

const PARAMETER = /:[A-Za-z_]\w*(?:\([^)]*\))?/;

/** An ordered route table. */
export class Router {
  readonly #routes: Route[] = [];

  /** Add a path pattern with its handlers by method; earlier patterns win. */
  route(label: string, pathname: string, handlers: Record<string, Handler>): this {
    const literals = pathname.split(PARAMETER).filter((part) => part !== "");
    this.#routes.push({ label, pattern: new URLPattern({ pathname }), literals, handlers });
    return this;
  }

  /** Find the route for a method and URL. */
  match(method: string, url: URL): Match {
    const path = url.pathname;
    for (const route of this.#routes) {
      if (!route.literals.every((literal) => path.includes(literal))) continue;
      const result = route.pattern.exec(url.href);
      if (!result) continue;
      const handler = Object.hasOwn(route.handlers, method) ? route.handlers[method] : undefined;
      if (handler) {
        return {
          kind: "found",
          label: route.label,
          handler,
          params: result.pathname.groups as Params,
        };
      }
      return { kind: "method", label: route.label, allowed: Object.keys(route.handlers) };
    }
    return { kind: "none" };
  }
}
