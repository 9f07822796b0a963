import type { UserRow } from "./user-repository";

/** What anyone may see of an account. */
export function publicProfile(user: UserRow) {
  return { id: user.id, username: user.username, createdAt: new Date(user.created_at).toISOString() };
}

/** What the account holder (and operators) see. */
export function accountView(user: UserRow) {
  return {
    ...publicProfile(user),
    email: user.email,
    role: user.role,
    quotaBytes: user.quota_bytes,
    usedBytes: user.used_bytes,
    updatedAt: new Date(user.updated_at).toISOString(),
  };
}
