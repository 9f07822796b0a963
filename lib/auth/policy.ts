import { ForbiddenError, NotFoundError, UnauthenticatedError } from "../errors";

/**
 * Who may do what to which resource, in one place. Someone else's private resource is
 * "not_found" rather than "forbidden", so that its existence does not leak.
 */
export type Role = "user" | "admin";
export type Visibility = "private" | "unlisted" | "public";

/** undefined is the anonymous visitor. */
export type Actor = { readonly id: string; readonly role: Role } | undefined;

export type Resource =
  | { readonly kind: "account"; readonly id: string }
  | { readonly kind: "media"; readonly ownerId: string; readonly visibility: Visibility }
  | { readonly kind: "media-collection" }
  | { readonly kind: "backups" }
  | { readonly kind: "audit-log" }
  | { readonly kind: "site-stats" };

export type Action = "read" | "create" | "update" | "delete" | "download-original" | "reprocess";

export type Decision = "allow" | "unauthenticated" | "forbidden" | "not_found";

function isAdmin(actor: Actor): boolean {
  return actor?.role === "admin";
}

export function decide(actor: Actor, action: Action, resource: Resource): Decision {
  switch (resource.kind) {
    case "account": {
      if (!actor) return "unauthenticated";
      if (actor.id === resource.id) return action === "download-original" || action === "create" ? "forbidden" : "allow";
      if (isAdmin(actor) && (action === "read" || action === "update" || action === "delete")) return "allow";
      return "not_found";
    }
    case "media": {
      const owner = actor !== undefined && actor.id === resource.ownerId;
      const readable = owner || isAdmin(actor) || resource.visibility !== "private";
      if (action === "read") return readable ? "allow" : "not_found";
      if (!actor) return readable ? "unauthenticated" : "not_found";
      if (action === "download-original") return owner ? "allow" : readable ? "forbidden" : "not_found";
      if (action === "reprocess") return isAdmin(actor) ? "allow" : readable ? "forbidden" : "not_found";
      if (action === "update" || action === "delete") return owner || isAdmin(actor) ? "allow" : readable ? "forbidden" : "not_found";
      return readable ? "forbidden" : "not_found";
    }
    case "media-collection":
      if (action === "read") return "allow";
      if (action === "create") return actor ? "allow" : "unauthenticated";
      return "forbidden";
    case "backups":
      if (!actor) return "unauthenticated";
      return isAdmin(actor) && (action === "read" || action === "create") ? "allow" : "forbidden";
    case "audit-log":
    case "site-stats":
      if (!actor) return "unauthenticated";
      return isAdmin(actor) && action === "read" ? "allow" : "forbidden";
  }
}

/** Throws the error that matches the decision; `what` names the resource in a not-found message. */
export function authorize(actor: Actor, action: Action, resource: Resource, what: string): void {
  const decision = decide(actor, action, resource);
  if (decision === "allow") return;
  if (decision === "unauthenticated") throw new UnauthenticatedError();
  if (decision === "not_found") throw new NotFoundError(what);
  throw new ForbiddenError();
}
