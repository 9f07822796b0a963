import { ErrorCode, nanos } from "nats";
import { MEDIA_DEAD_LETTER_CHANNEL, MEDIA_JOBS_CHANNEL } from "../service-contracts";

/**
 * The durable job channel (@moleculer/channels) and, in cluster mode, its JetStream streams.
 *
 * The NATS adapter creates a channel's stream only when a node subscribes to it (NatsAdapter.subscribe():
 * the channel's stream, then its dead-letter stream). A publish before any worker ever subscribed (a fresh
 * cluster), or after NATS lost its streams while every worker was down, finds no stream: JetStream answers
 * "no responders" (503) and the message is gone. So the publishing side makes the same streams itself,
 * through the adapter the channels middleware puts on the broker, once connected and again after a 503.
 */

const JOB_MESSAGE_MAX_AGE_MS = 7 * 24 * 3600 * 1000;

/** The `nats` options of the job channel: the workers subscribe with them, the publisher makes the streams with them. */
export interface JobChannelNatsOptions {
  /** Passed to the adapter's createStream() as the channel's own stream config (the adapter's defaults otherwise). */
  readonly streamConfig: Record<string, unknown>;
  readonly consumerOptions: { readonly config: { readonly deliver_policy: "all" } };
}

export function jobChannelNatsOptions(): JobChannelNatsOptions {
  return {
    // Job messages are nudges (the database is the truth, and the reconciler re-enqueues what is still
    // pending): a week of them is plenty, and bounds both the stream and what a new worker group reads.
    // On disk (JetStream's default, said here so that it stays so): queued jobs survive a restart of NATS.
    streamConfig: { max_age: nanos(JOB_MESSAGE_MAX_AGE_MS), storage: "file" },
    // The adapter's default is "new": a durable consumer created after messages were published (the first
    // worker of a group) would skip them. "all" starts it at the beginning of the stream. It matters only
    // when the consumer is created: an existing durable keeps its configuration and its position.
    consumerOptions: { config: { deliver_policy: "all" } },
  };
}

/** What this module uses of @moleculer/channels' NatsAdapter (`broker.channelAdapter`). */
export interface StreamCreatingAdapter {
  readonly connected: boolean;
  addPrefixTopic(topic: string): string;
  /** Creates the stream, or leaves an existing one as it is; logs failures instead of throwing. */
  createStream(streamName: string, subjects: string[], streamConfig?: Record<string, unknown>): Promise<unknown>;
}

/** The adapter when it makes streams (NATS), undefined otherwise (the in-process adapter of embedded mode). */
export function streamCreatingAdapter(candidate: unknown): StreamCreatingAdapter | undefined {
  const adapter = candidate as Partial<StreamCreatingAdapter> | null | undefined;
  return typeof adapter?.createStream === "function" && typeof adapter.addPrefixTopic === "function" ? (adapter as StreamCreatingAdapter) : undefined;
}

/** A channel's stream as NatsAdapter.subscribe() makes it: the prefixed channel name as its subject, dots as underscores in its name. */
export function streamOf(adapter: StreamCreatingAdapter, channel: string): { name: string; subject: string } {
  const subject = adapter.addPrefixTopic(channel);
  // NatsAdapter.subscribe() derives the name inline (JetStream names may not contain dots); the same rule here.
  return { name: subject.split(".").join("_"), subject };
}

/** JetStream's answer to a publish on a subject that no stream takes. */
export function isNoResponders(error: unknown): boolean {
  return (error as { code?: unknown } | null | undefined)?.code === ErrorCode.NoResponders;
}

export interface JobPublisherOptions {
  /** The channels adapter of this node (read when needed: the middleware sets it when the broker is created). */
  readonly adapter: () => unknown;
  /** broker.sendToChannel(MEDIA_JOBS_CHANNEL, payload), looked up at each call. */
  readonly send: (payload: unknown) => Promise<void>;
  readonly log: (level: "info" | "warn", message: string) => void;
}

/** How long a publish made while the node is still starting waits for the channel adapter. */
export const PUBLISH_WAIT_FOR_ADAPTER_MS = 30_000;

/**
 * Publishes job messages, making the job streams first when JetStream has none for them. A job published
 * before the channel adapter has connected and subscribed this node's workers (an upload the moment the
 * node starts) waits for it instead of being dropped ("Adapter not yet connected").
 */
export class JobPublisher {
  private ensuring: Promise<void> | undefined;
  private markConnected: () => void = () => undefined;
  private readonly connected = new Promise<void>((resolve) => {
    this.markConnected = resolve;
  });

  constructor(private readonly options: JobPublisherOptions) {}

  /** Once the adapter is connected (CHANNEL_ADAPTER_CONNECTED_EVENT): makes the streams and lets waiting publishes go. Never throws; a publish that finds no stream still makes them. */
  async prepare(): Promise<void> {
    await this.ensureStreams().catch((error: Error) => this.options.log("warn", `could not make the job streams: ${error.message}`));
    this.markConnected();
  }

  /** Publishes; when JetStream has no stream for the channel (503), makes the streams and publishes once more. */
  async publish(payload: unknown): Promise<void> {
    await this.adapterConnected();
    try {
      await this.options.send(payload);
    } catch (error) {
      if (!isNoResponders(error) || streamCreatingAdapter(this.options.adapter()) === undefined) throw error;
      this.options.log("info", `no JetStream stream takes ${MEDIA_JOBS_CHANNEL}: making the job streams and publishing again`);
      await this.ensureStreams();
      await this.options.send(payload);
    }
  }

  private async adapterConnected(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const gaveUp = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, PUBLISH_WAIT_FOR_ADAPTER_MS);
      timer.unref();
    });
    await Promise.race([this.connected, gaveUp]);
    clearTimeout(timer);
  }

  /** The job channel's stream and its dead-letter stream, as a subscribing worker would make them; concurrent calls share one run. */
  ensureStreams(): Promise<void> {
    this.ensuring ??= this.makeStreams().finally(() => {
      this.ensuring = undefined;
    });
    return this.ensuring;
  }

  private async makeStreams(): Promise<void> {
    const adapter = streamCreatingAdapter(this.options.adapter());
    if (adapter === undefined || !adapter.connected) return;
    const { streamConfig } = jobChannelNatsOptions();
    for (const channel of [MEDIA_JOBS_CHANNEL, MEDIA_DEAD_LETTER_CHANNEL]) {
      const stream = streamOf(adapter, channel);
      await adapter.createStream(stream.name, [stream.subject], streamConfig);
    }
  }
}
