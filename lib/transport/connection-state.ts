/** A status report of the NATS client (nats.js `status()`): "disconnect", "reconnecting", "reconnect", ... */
export interface ConnectionStatus {
  readonly type: string;
}

/**
 * Whether this node's transporter connection is up, followed from the client's own status reports: the
 * transporter keeps saying "connected" while its client reconnects, and a call sent then would wait for the
 * full request timeout.
 */
export class ConnectionState {
  private up = true;
  private readonly lostListeners = new Set<() => void>();

  get connected(): boolean {
    return this.up;
  }

  /** Calls the listener each time the connection is lost. */
  onLost(listener: () => void): () => void {
    this.lostListeners.add(listener);
    return () => this.lostListeners.delete(listener);
  }

  /** Follows the reports until they end (the client closed). */
  async follow(statuses: AsyncIterable<ConnectionStatus>): Promise<void> {
    for await (const status of statuses) {
      if (status.type === "disconnect" || status.type === "reconnecting") this.set(false);
      else if (status.type === "reconnect") this.set(true);
    }
  }

  private set(up: boolean): void {
    const lost = this.up && !up;
    this.up = up;
    if (lost) for (const listener of this.lostListeners) listener();
  }
}
