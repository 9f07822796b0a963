/** The form of a username used for uniqueness and lookup: "Ada" and "ada" are the same account. */
export function usernameKey(username: string): string {
  return username.trim().normalize("NFC").toLowerCase();
}

export function normalizeEmail(email: string): string {
  return email.trim().normalize("NFC").toLowerCase();
}
