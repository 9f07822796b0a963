import "moleculer";

declare module "moleculer" {
  /** What the channels middleware (@moleculer/channels) adds to the broker on nodes that run jobs. */
  interface ServiceBroker {
    sendToChannel(channel: string, payload: unknown, options?: Record<string, unknown>): Promise<void>;
    /** The channel adapter (its `adapterPropertyName`), for making JetStream streams. */
    readonly channelAdapter?: unknown;
  }
}
