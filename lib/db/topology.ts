/**
 * Which server is a database's primary after a promotion. The settings (MYSQL_PRIMARY_URL,
 * MYSQL_REPLICA_URLS) name the servers and their credentials; a promotion stores only the new
 * roles, as host:port, where every node reads them. A node applies the stored roles while they
 * name servers its settings know; once its settings name the stored primary as primary (the
 * operator has caught the settings up), the settings win again.
 */

export interface StoredTopology {
  /** host:port */
  readonly primary: string;
  readonly replicas: readonly string[];
  readonly previousPrimary: string;
  readonly promotedAt: string;
}

export interface TopologyStore {
  load(database: string): Promise<StoredTopology | undefined>;
  save(database: string, topology: StoredTopology): Promise<void>;
}

export interface ServerUrls {
  readonly primaryUrl: string;
  readonly replicaUrls: readonly string[];
}

export interface ResolvedTopology {
  readonly source: "settings" | "stored";
  readonly urls: ServerUrls;
  /** Why a stored topology was not applied. */
  readonly ignored?: string;
}

/** host:port of a mysql:// URL (3306 when the port is left out). */
export function serverOf(url: string): string {
  const parsed = new URL(url);
  return `${parsed.hostname}:${parsed.port || "3306"}`;
}

/** The URLs a node should use, given its settings and what a promotion stored. */
export function resolveTopology(configured: ServerUrls, stored: StoredTopology | undefined): ResolvedTopology {
  if (stored === undefined || serverOf(configured.primaryUrl) === stored.primary) return { source: "settings", urls: configured };
  const known = new Map([configured.primaryUrl, ...configured.replicaUrls].map((url) => [serverOf(url), url]));
  const urlOf = (server: string): string | undefined => known.get(server);
  const primaryUrl = urlOf(stored.primary);
  const unknown = [stored.primary, ...stored.replicas].filter((server) => urlOf(server) === undefined);
  if (primaryUrl === undefined || unknown.length > 0) {
    return {
      source: "settings",
      urls: configured,
      ignored: `the stored topology names ${unknown.join(", ")}, which this node's settings do not list; using the settings`,
    };
  }
  return { source: "stored", urls: { primaryUrl, replicaUrls: stored.replicas.map((server) => urlOf(server) as string) } };
}
