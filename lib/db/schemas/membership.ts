/** Tables of the membership database. Times are milliseconds since the epoch. */
export interface UsersTable {
  id: string;
  username: string;
  /** The username normalised for uniqueness and lookup (NFC, lower case). */
  username_key: string;
  email: string;
  email_key: string;
  password_hash: string | null;
  role: "user" | "admin";
  quota_bytes: number;
  used_bytes: number;
  created_at: number;
  updated_at: number;
}

export interface SessionsTable {
  /** SHA-256 of the session token, hex; the token itself is never stored. */
  id: string;
  user_id: string;
  created_at: number;
  last_seen_at: number;
  expires_at: number;
  ip: string | null;
  user_agent: string | null;
}

export interface QuotaReservationsTable {
  id: string;
  user_id: string;
  bytes: number;
  expires_at: number;
}

export interface MembershipDatabase {
  users: UsersTable;
  sessions: SessionsTable;
  quota_reservations: QuotaReservationsTable;
}
