import { ServiceBroker } from "moleculer";
import type { ServiceSchema } from "moleculer";
import type { ServiceName, Settings } from "./config/settings";
import type { ProcessorRegistry } from "./lib/jobs/processor";
import { imageProcessor } from "./lib/processing/image-processor";
import { audioProcessor, videoProcessor } from "./lib/processing/transcode-processors";
import { FrontDoor } from "./lib/http/front-door";
import { createRuntime } from "./lib/runtime";
import type { Runtime } from "./lib/runtime";
import { brokerOptions, GatewayPrometheusReporter } from "./moleculer.config";
import { apiService } from "./services/api.service";
import { mediaService } from "./services/media.service";
import { processingService } from "./services/processing.service";
import { siteService } from "./services/site.service";
import { usersService } from "./services/users.service";

export interface ShoalNode {
  readonly broker: ServiceBroker;
  readonly runtime: Runtime;
  /** The HTTP port, once listening (when the node runs the api service). */
  readonly port: number | undefined;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** The processors of this build, by media kind; a kind without one stays `uploaded`. */
export function processorsFor(settings: Settings): ProcessorRegistry {
  const limitInputPixels = settings.uploads.maxImagePixels;
  const transcoding = { maxDurationSeconds: 30 * 60, threads: settings.jobs.ffmpegThreads, limitInputPixels };
  const all: ProcessorRegistry = {
    image: imageProcessor({ limitInputPixels }),
    video: videoProcessor(transcoding),
    audio: audioProcessor(transcoding),
  };
  return Object.fromEntries(settings.jobs.kinds.map((kind) => [kind, all[kind]]));
}

export interface NodeOptions {
  /** Replaces processorsFor(settings) (tests register their own to exercise the job machinery). */
  readonly processors?: ProcessorRegistry;
}

/** Builds one node: the broker, the adapters its mode calls for, and the services named in the settings. */
export function createNode(settings: Settings, options: NodeOptions = {}): ShoalNode {
  const runtime = createRuntime(settings);
  const broker = new ServiceBroker(brokerOptions(settings));
  const reporter = broker.metrics.reporter?.find?.((candidate: unknown) => candidate instanceof GatewayPrometheusReporter);
  const frontDoor = settings.services.includes("api") ? new FrontDoor(runtime.health) : undefined;
  let port: number | undefined;

  runtime.health.register("transporter", () =>
    broker.transit
      ? { status: broker.transit.connected ? "ok" : "down", kind: "nats" }
      : { status: "ok", kind: "none" },
  );
  if (settings.services.some((name) => name === "api" || name === "media")) {
    runtime.health.register("storage", () => runtime.storage.check());
  }

  const factories: Record<ServiceName, () => ServiceSchema> = {
    api: () => apiService(runtime, { frontDoor: frontDoor as FrontDoor, metrics: reporter as GatewayPrometheusReporter | undefined }),
    users: () => usersService(runtime),
    media: () => mediaService(runtime),
    site: () => siteService(runtime),
    processing: () => processingService(runtime, options.processors ?? processorsFor(settings)),
  };
  for (const name of settings.services) broker.createService(factories[name]());

  return {
    broker,
    runtime,
    get port() {
      return port;
    },
    async start() {
      // Listen first, so that health can answer 503 while dependencies are still coming up.
      if (frontDoor) {
        port = await frontDoor.listen(settings.port);
        broker.logger.info(`HTTP on http://localhost:${port} (${settings.mode} mode)`);
      }
      await broker.start();
    },
    async stop() {
      await broker.stop();
      await frontDoor?.close();
      await runtime.close();
    },
  };
}
