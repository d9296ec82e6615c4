/**
 * A small `URLPattern` router: routes are added with a method and a path pattern; matching tells a
 * handler with its parameters, or which methods the path allows (405), or nothing (404).
 *
 * @module
 */

/** Path parameters of a matched route. */
export type Params = Record<string, string>;

/** What a handler is given. */
export interface RequestContext {
  /** The request. */
  request: Request;
  /** Its parsed URL. */
  url: URL;
  /** Path parameters. */
  params: Params;
}

/** A request handler. */
export type Handler = (ctx: RequestContext) => Response | Promise<Response>;

/** One route. */
export interface Route {
  /** HTTP method. */
  method: string;
  /** Path pattern. */
  pattern: URLPattern;
  /** Its handler. */
  handler: Handler;
}

/** The result of matching a request. */
export type Match =
  | { kind: "found"; handler: Handler; params: Params }
  | { kind: "method"; allowed: string[] }
  | { kind: "none" };

/** An ordered route table. */
export class Router {
  readonly #routes: Route[] = [];

  /** Add a route; earlier routes win. */
  add(method: string, pathname: string, handler: Handler): this {
    this.#routes.push({ method, pattern: new URLPattern({ pathname }), handler });
    return this;
  }

  /** Find the route for a method and URL. */
  match(method: string, url: string): Match {
    const allowed: string[] = [];
    for (const route of this.#routes) {
      const result = route.pattern.exec(url);
      if (!result) continue;
      if (route.method === method) {
        return {
          kind: "found",
          handler: route.handler,
          params: result.pathname.groups as Params,
        };
      }
      allowed.push(route.method);
    }
    return allowed.length > 0 ? { kind: "method", allowed } : { kind: "none" };
  }
}
