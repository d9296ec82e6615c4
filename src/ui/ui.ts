/**
 * The web UI: server-rendered pages under `/ui/` (and `/` redirecting there), read through the
 * registry's services with the caller's identity and policy. Pages and assets are strings in
 * this folder, so the bundle, the compiled binary and the image carry them.
 *
 * Paths (`-` cannot start a repository name's component, so it separates the parts):
 * `/ui/` list, `/ui/<name>` repository, `/ui/<name>/-/manifest/<ref>` manifest,
 * `/ui/<name>/-/delete/<ref>` delete confirmation (GET) and delete (POST),
 * `/ui/-/app.js`, `/ui/-/sign-in` (form, GET; sign in, POST), `/ui/-/sign-out` (POST).
 *
 * Who is calling: the identity the API's auth found (a Basic header, a Bearer token), else the
 * session cookie the sign-in form set (src/ui/session.ts), else anonymous. The stylesheet is inlined (no render-blocking request) and
 * allowed by its hash in the Content-Security-Policy; no other inline style or script runs.
 *
 * @module
 */
import { asRequest } from "../http/request_view.ts";
import { createHash } from "node:crypto";
import { RegistryError } from "../errors.ts";
import type { Handler, RequestContext } from "../http/router.ts";
import { digestBytes } from "../oci/digest.ts";
import { isValidName, parseReference } from "../oci/names.ts";
import type { Registry } from "../services/registry.ts";
import { SCRIPT } from "./assets/script.ts";
import { STYLE } from "./assets/style.ts";
import { CsrfTokens, isSameOrigin } from "./csrf.ts";
import { loadManifest, loadRepositories, loadTags, type TagSort, type Viewer } from "./data.ts";
import { deletePage, messagePage } from "./delete_page.ts";
import { repositoryUrl, safeNext, signInUrl, UI_ROOT } from "./format.ts";
import type { Html } from "./html.ts";
import type { PageContext } from "./layout.ts";
import { listPage } from "./list_page.ts";
import { manifestPage } from "./manifest_page.ts";
import { repositoryPage } from "./repository_page.ts";
import { Sessions } from "./session.ts";
import { signInPage } from "./sign_in_page.ts";

/** Repositories per page of the list. */
export const LIST_PAGE_SIZE = 100;
/** Tags per page of a repository. */
const TAG_PAGE_SIZE = 100;
/** Largest form body accepted. */
const MAX_FORM_BYTES = 4096;

/** Headers of every UI page. */
const PAGE_HEADERS: Record<string, string> = {
  "Content-Type": "text/html; charset=utf-8",
  "Cache-Control": "private, no-cache",
  "Content-Security-Policy":
    `default-src 'none'; style-src 'sha256-${
      createHash("sha256").update(STYLE).digest("base64")
    }'; script-src 'self'; img-src 'self' data:; ` +
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  "X-Content-Type-Options": "nosniff",
  "X-Frame-Options": "DENY",
  "Referrer-Policy": "same-origin",
};

interface Asset {
  body: string;
  type: string;
  url: string;
  etag: string;
}

function asset(path: string, body: string, type: string): Asset {
  const version = digestBytes(new TextEncoder().encode(body)).hex.slice(0, 16);
  return { body, type, url: `${UI_ROOT}-/${path}?v=${version}`, etag: `"${version}"` };
}

/** Handlers of the web UI. */
export function uiHandlers(registry: Registry): Record<"root" | "get" | "post", Handler> {
  const script = asset("app.js", SCRIPT, "text/javascript; charset=utf-8");
  const assets = new Map([["-/app.js", script]]);
  const { config, authorizer } = registry;
  // Keyed by `http.secret` when set: replicas and restarts accept each other's cookies and forms.
  const csrf = new CsrfTokens(config.httpSecret);
  const sessions = new Sessions({ secret: config.httpSecret });
  // Passwords are checked here (htpasswd, with or without berth's token endpoint): the form.
  const checkPassword = config.auth?.htpasswd ? authorizer.checkPassword : undefined;
  // Only an external issuer's tokens: its users exist there, not here.
  const external = !checkPassword && config.auth?.token !== undefined;

  /** The caller: the API's identity, else the session cookie's user, else anonymous. */
  const viewerOf = async (context: RequestContext): Promise<Viewer> => {
    const { identity } = context;
    const request = asRequest(context.request);
    let caller = identity;
    let session = false;
    if (checkPassword && (caller === undefined || caller.via === "anonymous")) {
      const user = await sessions.user(request);
      // The form checked this user's password as Basic auth does: the policy judges them.
      if (user !== undefined) [caller, session] = [{ user, via: "basic" }, true];
    }
    const user = caller?.user;
    const deletes = config.deleteEnabled && !config.readOnly;
    return {
      ...(user !== undefined && { user }),
      session,
      canPull: (name) => authorizer.canPull(caller, name),
      catalog: authorizer.catalogView(caller),
      canDelete: (name) => deletes && authorizer.actions(caller, name).has("delete"),
    };
  };

  const contextOf = async (request: Request, url: URL, viewer: Viewer): Promise<PageContext> => {
    const ctx: PageContext = {
      signIn: viewer.user === undefined && checkPassword !== undefined,
      host: request.headers.get("Host") ?? url.host,
      now: new Date(),
      style: STYLE,
      scriptUrl: script.url,
    };
    if (viewer.user !== undefined) ctx.user = viewer.user;
    if (viewer.session) ctx.signOutToken = await csrf.token(viewer.user);
    if (ctx.signIn && request.method === "GET") {
      ctx.signInHref = signInUrl(url.pathname + url.search);
    }
    return ctx;
  };

  /** Off to the sign-in form, back to this page afterwards. */
  const toSignIn = (url: URL): Response => redirect(signInUrl(url.pathname + url.search));

  /** The answer to a caller who may not see `name`: sign in, or refused (never "not found"). */
  const refuse = (ctx: PageContext, method: string, url: URL): Response =>
    ctx.signIn && method !== "POST" ? toSignIn(url) : htmlResponse(
      messagePage(
        ctx,
        "Not available",
        "This repository does not exist, or you may not pull from it.",
      ),
      method,
      ctx.user === undefined ? 404 : 403,
    );

  const get: Handler = async (context: RequestContext) => {
    const { url } = context;
    const request = asRequest(context.request);
    const path = url.pathname.slice(UI_ROOT.length);
    const found = assets.get(path);
    if (found) return assetResponse(found, request, url);
    const viewer = await viewerOf(context);
    const ctx = await contextOf(request, url, viewer);
    const method = request.method;
    if (path === "-/sign-in") {
      const next = safeNext(url.searchParams.get("next"));
      if (ctx.user !== undefined) return redirect(next);
      if (!checkPassword) return noSignIn(ctx, method, external);
      return htmlResponse(signInPage(ctx, { next, token: await csrf.token(undefined) }), method);
    }
    if (path === "") {
      const filter = (url.searchParams.get("q") ?? "").trim().slice(0, 255);
      const last = url.searchParams.get("last") ?? undefined;
      const list = await loadRepositories(registry, viewer, {
        filter,
        ...(last !== undefined && { last }),
        limit: LIST_PAGE_SIZE,
      });
      if (list.rows.length === 0 && filter === "" && last === undefined && ctx.signIn) {
        return toSignIn(url);
      }
      return htmlResponse(listPage(ctx, list, filter), method);
    }
    const route = parsePath(path);
    if (!route) return notFound(ctx, method);
    if (!viewer.canPull(route.name)) return refuse(ctx, method, url);
    try {
      if (route.kind === "repository") {
        const sort = parseSort(url.searchParams.get("sort"));
        const descending = url.searchParams.get("order") === "desc";
        const tags = await loadTags(registry, route.name, {
          sort,
          descending,
          page: Number(url.searchParams.get("page")) || 1,
          perPage: TAG_PAGE_SIZE,
        });
        const deleted = url.searchParams.get("deleted");
        return htmlResponse(
          repositoryPage(ctx, {
            name: route.name,
            tags,
            sort,
            descending,
            canDelete: viewer.canDelete(route.name),
            ...(deleted !== null && { deleted: deleted.slice(0, 200) }),
          }),
          method,
        );
      }
      if (route.kind === "manifest") {
        const detail = await loadManifest(registry, route.name, route.reference);
        return htmlResponse(
          manifestPage(ctx, detail, viewer.canDelete(route.name)),
          method,
        );
      }
      if (!viewer.canDelete(route.name)) return deletesRefused(ctx, method);
      const detail = await loadManifest(registry, route.name, route.reference);
      return htmlResponse(
        deletePage(ctx, {
          name: route.name,
          reference: route.reference,
          tags: route.reference.includes(":") ? detail.tags : [],
          token: await csrf.token(viewer.user),
        }),
        method,
      );
    } catch (error) {
      return errorPage(ctx, method, error);
    }
  };

  const post: Handler = async (context: RequestContext) => {
    const { url } = context;
    const request = asRequest(context.request);
    const viewer = await viewerOf(context);
    const ctx = await contextOf(request, url, viewer);
    const path = url.pathname.slice(UI_ROOT.length);
    const route = parsePath(path);
    const known = path === "-/sign-in" || path === "-/sign-out" || route?.kind === "delete";
    if (!known) {
      await context.body?.cancel().catch(() => {});
      return notFound(ctx, "POST");
    }
    if (!isSameOrigin(request)) {
      await context.body?.cancel().catch(() => {});
      return htmlResponse(
        messagePage(ctx, "Refused", "This request did not come from this registry's pages."),
        "POST",
        403,
      );
    }
    const form = await readForm(context.body);
    // The sign-in form is an anonymous one (its token names no user).
    const formUser = path === "-/sign-in" ? undefined : viewer.user;
    if (!(await csrf.verify(form.get("csrf") ?? "", formUser))) {
      return htmlResponse(
        messagePage(ctx, "Refused", "The form has expired. Go back, reload and try again."),
        "POST",
        403,
      );
    }
    const secure = url.protocol === "https:";
    if (path === "-/sign-out") {
      return redirect(UI_ROOT, { "Set-Cookie": sessions.signOut(secure) });
    }
    if (path === "-/sign-in") {
      if (!checkPassword) return noSignIn(ctx, "POST", external);
      const next = safeNext(form.get("next"));
      const name = (form.get("user") ?? "").slice(0, 256);
      const again = async (problem: string, status: number) =>
        htmlResponse(
          signInPage(ctx, { next, token: await csrf.token(undefined), user: name, problem }),
          "POST",
          status,
        );
      let user: string | undefined;
      try {
        user = await checkPassword.call(
          authorizer,
          name,
          (form.get("password") ?? "").slice(0, 1024),
          context.client,
        );
      } catch (error) {
        if (!(error instanceof RegistryError)) throw error;
        return await again(error.message, error.status);
      }
      if (user === undefined) return await again("Wrong user name or password.", 200);
      return redirect(next, { "Set-Cookie": await sessions.signIn(user, secure) });
    }
    if (!route || route.kind !== "delete") return notFound(ctx, "POST");
    if (!viewer.canPull(route.name)) return refuse(ctx, "POST", url);
    if (!viewer.canDelete(route.name)) return deletesRefused(ctx, "POST");
    try {
      await registry.manifests.delete(route.name, route.reference);
    } catch (error) {
      return errorPage(ctx, "POST", error);
    }
    return redirect(repositoryUrl(route.name, { deleted: route.reference }));
  };

  const root: Handler = () => redirect(UI_ROOT);

  return { root, get, post };
}

/** A UI path below `/ui/`, parsed. */
type UiRoute =
  | { kind: "repository"; name: string }
  | { kind: "manifest" | "delete"; name: string; reference: string };

/** Parse `<name>`, `<name>/-/manifest/<ref>` or `<name>/-/delete/<ref>` (percent-encoded). */
export function parsePath(path: string): UiRoute | undefined {
  let decoded: string;
  try {
    decoded = decodeURIComponent(path);
  } catch {
    return undefined;
  }
  const split = decoded.indexOf("/-/");
  if (split < 0) {
    const name = decoded.endsWith("/") ? decoded.slice(0, -1) : decoded;
    return isValidName(name) ? { kind: "repository", name } : undefined;
  }
  const name = decoded.slice(0, split);
  const rest = decoded.slice(split + 3);
  const slash = rest.indexOf("/");
  const kind = rest.slice(0, slash);
  const reference = rest.slice(slash + 1);
  if (slash < 0 || (kind !== "manifest" && kind !== "delete") || !isValidName(name)) {
    return undefined;
  }
  try {
    parseReference(reference);
  } catch {
    return undefined;
  }
  return { kind, name, reference };
}

function parseSort(value: string | null): TagSort {
  return value === "pushed" || value === "size" ? value : "name";
}

function notFound(ctx: PageContext, method: string): Response {
  return htmlResponse(messagePage(ctx, "Not found", "There is no such page."), method, 404);
}

/**
 * The sign-in page where berth checks no passwords. With an external token issuer, users sign in
 * to it with their registry client; the page says so (docs/ui/design.md: delegating the form to
 * the issuer is the design, not built yet).
 */
function noSignIn(ctx: PageContext, method: string, external: boolean): Response {
  return htmlResponse(
    messagePage(
      ctx,
      "Sign in",
      external
        ? "Accounts of this registry live at its token service, which these pages cannot " +
          "sign you in to yet: they show what anyone may pull. Sign in with your client " +
          "(docker login, podman login) to pull and push."
        : "This registry checks no passwords: there is no sign-in here.",
    ),
    method,
    404,
  );
}

function deletesRefused(ctx: PageContext, method: string): Response {
  return htmlResponse(
    messagePage(ctx, "Not allowed", "Deleting is disabled here, or you may not delete."),
    method,
    403,
  );
}

/** A registry error from a service as a page (others are rethrown: the app logs them). */
function errorPage(ctx: PageContext, method: string, error: unknown): Response {
  if (!(error instanceof RegistryError)) throw error;
  const title = error.status === 404 ? "Not found" : "Error";
  return htmlResponse(messagePage(ctx, title, error.message), method, error.status);
}

function htmlResponse(
  body: Html,
  method: string,
  status = 200,
  headers: Record<string, string> = {},
): Response {
  const response = new Response(method === "HEAD" ? null : body.text, { status });
  for (const [key, value] of Object.entries({ ...PAGE_HEADERS, ...headers })) {
    response.headers.set(key, value);
  }
  return response;
}

function assetResponse(found: Asset, request: Request, url: URL): Response {
  const headers = new Headers({
    "Content-Type": found.type,
    "ETag": found.etag,
    "X-Content-Type-Options": "nosniff",
    // A versioned URL never changes content; an unversioned one is revalidated.
    "Cache-Control": url.search === new URL(found.url, url).search
      ? "public, max-age=31536000, immutable"
      : "no-cache",
  });
  if (request.headers.get("If-None-Match") === found.etag) {
    return new Response(null, { status: 304, headers });
  }
  return new Response(request.method === "HEAD" ? null : found.body, { headers });
}

function redirect(location: string, headers: Record<string, string> = {}): Response {
  return new Response(null, {
    status: 303,
    headers: { Location: location, "Cache-Control": "no-store", ...headers },
  });
}

/** Read a small urlencoded form body (larger ones are cut off: the token is all we need). */
async function readForm(body: ReadableStream<Uint8Array> | null): Promise<URLSearchParams> {
  if (!body) return new URLSearchParams();
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    while (total <= MAX_FORM_BYTES) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      total += value.byteLength;
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return new URLSearchParams(new TextDecoder().decode(bytes.subarray(0, MAX_FORM_BYTES)));
}
