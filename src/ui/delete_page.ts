/**
 * The delete confirmation (`/ui/<name>/-/delete/<reference>`): says what will go, and posts the
 * delete with the CSRF token.
 *
 * @module
 */
import { deleteUrl, manifestUrl, repositoryUrl, UI_ROOT } from "./format.ts";
import { type Html, markup } from "./html.ts";
import { page, type PageContext } from "./layout.ts";

/** What is about to be deleted. */
export interface DeleteView {
  /** The repository. */
  name: string;
  /** The tag or digest. */
  reference: string;
  /** For a digest: the tags that go with it. */
  tags: string[];
  /** The CSRF token of the form. */
  token: string;
  /** A problem with an earlier attempt, when any. */
  problem?: string;
}

/** Render the confirmation page. */
export function deletePage(ctx: PageContext, view: DeleteView): Html {
  const { name, reference } = view;
  const byDigest = reference.includes(":");
  const what = byDigest
    ? markup`Delete manifest <code>${reference}</code> from <strong>${name}</strong>?`
    : markup`Delete tag <strong>${reference}</strong> from <strong>${name}</strong>?`;
  const consequence = byDigest
    ? view.tags.length === 0
      ? markup`The manifest can no longer be pulled from this repository.`
      : markup`The manifest can no longer be pulled from this repository, and these tags go with it: ${
        view.tags.map((tag, i) => markup`${i > 0 ? ", " : ""}<strong>${tag}</strong>`)
      }.`
    : markup`Only the tag goes; the manifest stays, reachable by its digest.`;
  const body = markup`
    <h1>Confirm delete</h1>
    ${view.problem ? markup`<p class="notice error" role="alert">${view.problem}</p>` : ""}
    <p>${what}</p>
    <p>${consequence}</p>
    <form method="post" action="${deleteUrl(name, reference)}">
      <input type="hidden" name="csrf" value="${view.token}">
      <button type="submit" class="danger">Delete</button>
      <a class="button" href="${
    byDigest ? manifestUrl(name, reference) : repositoryUrl(name)
  }">Cancel</a>
    </form>
  `;
  return page(ctx, "Confirm delete", [
    { label: "Repositories", href: UI_ROOT },
    { label: name, href: repositoryUrl(name) },
    { label: "Delete" },
  ], body);
}

/** A page for an error (not found, forbidden, sign-in needed). */
export function messagePage(ctx: PageContext, title: string, message: Html | string): Html {
  return page(
    ctx,
    title,
    [{ label: "Repositories", href: UI_ROOT }, { label: title }],
    markup`
      <h1>${title}</h1>
      <p>${message}</p>
      <p><a href="${UI_ROOT}">All repositories</a></p>
    `,
  );
}
