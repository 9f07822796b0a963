import { authorize, decide } from "../../lib/auth/policy";
import type { Action, Actor, Decision, Resource } from "../../lib/auth/policy";
import { AppError } from "../../lib/errors";

const OWNER_ID = "01HOWNER000000000000000000";
const actors = {
  anonymous: undefined,
  owner: { id: OWNER_ID, role: "user" },
  "other user": { id: "01HOTHER000000000000000000", role: "user" },
  admin: { id: "01HADMIN000000000000000000", role: "admin" },
} satisfies Record<string, Actor>;
type ActorName = keyof typeof actors;

/** "owner" means: the account itself, or the media's owner. */
const resources = {
  account: { kind: "account", id: OWNER_ID },
  "private media": { kind: "media", ownerId: OWNER_ID, visibility: "private" },
  "unlisted media": { kind: "media", ownerId: OWNER_ID, visibility: "unlisted" },
  "public media": { kind: "media", ownerId: OWNER_ID, visibility: "public" },
  "media collection": { kind: "media-collection" },
  "audit log": { kind: "audit-log" },
} satisfies Record<string, Resource>;
type ResourceName = keyof typeof resources;

const A = "allow";
const U = "unauthenticated";
const F = "forbidden";
const N = "not_found";

/**
 * The authorization table. Columns: read, create, update, delete, download-original.
 * Someone else's private resource (an account, private media) is not_found for every
 * action, so that its existence does not leak; a resource the actor may see but not
 * change is forbidden; an anonymous visitor is asked to sign in where signing in could help.
 */
const TABLE: Array<[ActorName, ResourceName, [Decision, Decision, Decision, Decision, Decision]]> = [
  //                                    read create update delete download-original
  ["anonymous", "account", /*       */ [U, U, U, U, U]],
  ["owner", "account", /*           */ [A, F, A, A, F]],
  ["other user", "account", /*      */ [N, N, N, N, N]],
  // An admin may see and manage any account; the two meaningless actions answer not_found.
  ["admin", "account", /*           */ [A, N, A, A, N]],

  ["anonymous", "private media", /* */ [N, N, N, N, N]],
  ["owner", "private media", /*     */ [A, F, A, A, A]],
  ["other user", "private media", /**/ [N, N, N, N, N]],
  ["admin", "private media", /*     */ [A, F, A, A, F]],

  ["anonymous", "unlisted media", /**/ [A, U, U, U, U]],
  ["owner", "unlisted media", /*    */ [A, F, A, A, A]],
  ["other user", "unlisted media", [A, F, F, F, F]],
  ["admin", "unlisted media", /*    */ [A, F, A, A, F]],

  ["anonymous", "public media", /*  */ [A, U, U, U, U]],
  ["owner", "public media", /*      */ [A, F, A, A, A]],
  ["other user", "public media", /* */ [A, F, F, F, F]],
  ["admin", "public media", /*      */ [A, F, A, A, F]],

  ["anonymous", "media collection", [A, U, F, F, F]],
  ["owner", "media collection", /*  */ [A, A, F, F, F]],
  ["other user", "media collection", [A, A, F, F, F]],
  ["admin", "media collection", /*  */ [A, A, F, F, F]],

  ["anonymous", "audit log", /*     */ [U, U, U, U, U]],
  ["owner", "audit log", /*         */ [F, F, F, F, F]],
  ["other user", "audit log", /*    */ [F, F, F, F, F]],
  ["admin", "audit log", /*         */ [A, F, F, F, F]],
];

const ACTIONS: readonly Action[] = ["read", "create", "update", "delete", "download-original"];

const rows = TABLE.flatMap(([actor, resource, decisions]) =>
  ACTIONS.map((action, column) => [actor, action, resource, decisions[column]!] as [ActorName, Action, ResourceName, Decision]),
);

test("the table covers every actor, resource and action once", () => {
  const keys = rows.map(([actor, action, resource]) => `${actor}/${action}/${resource}`);
  expect(new Set(keys).size).toBe(Object.keys(actors).length * Object.keys(resources).length * ACTIONS.length);
});

it.each(rows)("%s → %s %s: %s", (actor, action, resource, expected) => {
  expect(decide(actors[actor], action, resources[resource])).toBe(expected);
});

describe("authorize throws the error that matches the decision", () => {
  it.each([
    ["allow", "owner", "read", "account", undefined],
    ["unauthenticated", "anonymous", "read", "account", { status: 401, code: "unauthenticated" }],
    ["not_found", "other user", "read", "account", { status: 404, code: "not_found", message: "The account was not found." }],
    ["forbidden", "other user", "read", "audit log", { status: 403, code: "forbidden" }],
  ] as Array<[string, ActorName, Action, ResourceName, Partial<AppError> | undefined]>)("%s", (_decision, actor, action, resource, expected) => {
    const attempt = (): void => authorize(actors[actor], action, resources[resource], resource);
    if (expected === undefined) {
      expect(attempt).not.toThrow();
      return;
    }
    let thrown: unknown;
    try {
      attempt();
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(AppError);
    expect(thrown).toMatchObject(expected);
  });

  test("a user asking for the audit log is forbidden, not told it does not exist", () => {
    expect(() => authorize(actors["other user"], "read", resources["audit log"], "audit log")).toThrow(
      expect.objectContaining({ status: 403, code: "forbidden" }),
    );
  });

  test.each(["private media", "account"] as const)(
    "someone else's %s is not found for every action, so that no answer confirms it exists",
    (resource) => {
      const answers = Object.fromEntries(ACTIONS.map((action) => [action, decide(actors["other user"], action, resources[resource])]));
      expect(answers).toEqual(Object.fromEntries(ACTIONS.map((action) => [action, "not_found"])));
      expect(() => authorize(actors["other user"], "read", resources[resource], resource)).toThrow(
        expect.objectContaining({ status: 404, code: "not_found", message: `The ${resource} was not found.` }),
      );
    },
  );
});
