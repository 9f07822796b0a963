import { ServiceBroker } from "moleculer";
import type { ServiceSchema } from "moleculer";
import type { ServiceName, Settings } from "./config/settings";
import type { ProcessorRegistry } from "./lib/jobs/processor";
import { imageProcessor } from "./lib/processing/image-processor";
import { audioProcessor, videoProcessor } from "./lib/processing/transcode-processors";
import { FrontDoor } from "./lib/http/front-door";
import { MetricsListener } from "./lib/http/metrics-listener";
import { logOutages } from "./lib/outages";
import { createRuntime } from "./lib/runtime";
import type { Runtime } from "./lib/runtime";
import { brokerOptions, GatewayPrometheusReporter } from "./moleculer.config";
import { transporterConnected } from "./mixins/transport-fail-fast.middleware";
import { apiService } from "./services/api.service";
import { mediaService } from "./services/media.service";
import { processingService } from "./services/processing.service";
import { siteService } from "./services/site.service";
import { backupService } from "./services/backup.service";
import { usersService } from "./services/users.service";

export interface ShoalNode {
  readonly broker: ServiceBroker;
  readonly runtime: Runtime;
  /** The HTTP port, once listening (when the node runs the api service). */
  readonly port: number | undefined;
  /** The metrics listener's port, once listening (METRICS_PORT). */
  readonly metricsPort: number | undefined;
  /** Where browsers reach this node: SHOAL_PUBLIC_URL, or the default with the port actually bound. */
  readonly publicUrl: string;
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

/** The public URL; with PORT=0 and none set, the default names the port actually bound. */
export function publicUrlOn(settings: Settings, boundPort: number | undefined): string {
  const defaulted = settings.port === 0 && settings.publicUrl === "http://localhost:0";
  return defaulted && boundPort !== undefined ? `http://localhost:${boundPort}` : settings.publicUrl;
}

export interface NodeOptions {
  /** Replaces processorsFor(settings) (tests register their own to exercise the job machinery). */
  readonly processors?: ProcessorRegistry;
}

/** Builds one node: the broker, the adapters its mode calls for, and the services named in the settings. */
export function createNode(settings: Settings, options: NodeOptions = {}): ShoalNode {
  const runtime = createRuntime(settings);
  const broker = new ServiceBroker(brokerOptions(settings));
  if (runtime.storage.outage) logOutages(runtime.storage.outage, broker.logger, "File storage (S3)");
  const reporter = broker.metrics.reporter?.find?.((candidate: unknown) => candidate instanceof GatewayPrometheusReporter) as
    | GatewayPrometheusReporter
    | undefined;
  const renderMetrics = () => reporter?.render() ?? "";
  const frontDoor = settings.services.includes("api") ? new FrontDoor(runtime.health) : undefined;
  const metricsListener = settings.metrics.port !== undefined ? new MetricsListener(renderMetrics, runtime.health) : undefined;
  let port: number | undefined;
  let metricsPort: number | undefined;

  runtime.health.register("transporter", () =>
    broker.transit
      ? { status: transporterConnected(broker) ? "ok" : "down", kind: "nats" }
      : { status: "ok", kind: "none" },
  );
  if (settings.services.some((name) => name === "api" || name === "media")) {
    // A bucket every node shares is not required, like the `uploads` check: a slow or failing S3 would take every
    // node out of rotation at once (reads that need no bucket call with it). The node's own directory is.
    runtime.health.register("storage", () => runtime.storage.check(), { required: settings.storage.kind !== "s3" });
  }

  const factories: Record<ServiceName, () => ServiceSchema> = {
    api: () => apiService(runtime, { frontDoor: frontDoor as FrontDoor, renderMetrics, publicUrl: publicUrlOn(settings, port) }),
    users: () => usersService(runtime),
    media: () => mediaService(runtime),
    site: () => siteService(runtime),
    backup: () => backupService(runtime),
    processing: () => processingService(runtime, options.processors ?? processorsFor(settings)),
  };
  // The api service is made once the port is bound, so that a default public URL names the real port.
  for (const name of settings.services) if (name !== "api") broker.createService(factories[name]());

  return {
    broker,
    runtime,
    get port() {
      return port;
    },
    get metricsPort() {
      return metricsPort;
    },
    get publicUrl() {
      return publicUrlOn(settings, port);
    },
    async start() {
      // Listen first, so that health can answer 503 `starting` while services and dependencies come up.
      if (metricsListener) {
        metricsPort = await metricsListener.listen(settings.metrics.port ?? 0, settings.metrics.host);
        broker.logger.info(`metrics on http://${settings.metrics.host}:${metricsPort}/metrics`);
      }
      if (frontDoor) {
        port = await frontDoor.listen(settings.port);
        broker.createService(factories.api());
        broker.logger.info(`HTTP on http://localhost:${port} (${settings.mode} mode)`);
      }
      // Resolves once every local service has started and the channel adapter has subscribed their channels.
      await broker.start();
      runtime.health.setPhase("ready");
    },
    async stop() {
      // Readiness answers 503 at once; requests and tus PATCHes in flight finish, jobs held here go back to
      // the other workers, all within SHUTDOWN_TIMEOUT_SECONDS; then the services stop (sockets close).
      runtime.health.setPhase("stopping");
      // Readiness already says 503; until the load balancer has seen it, requests still come here and are served.
      if (frontDoor && settings.shutdownDelaySeconds > 0) await new Promise((resolve) => setTimeout(resolve, settings.shutdownDelaySeconds * 1000));
      const deadline = Date.now() + settings.shutdownTimeoutSeconds * 1000;
      const processing = broker.getLocalService("processing") as { handBackJobs?(deadline: number): Promise<void> } | undefined;
      await Promise.all([frontDoor?.drain(deadline), processing?.handBackJobs?.(deadline)]);
      // Should a service fail to stop, what the node holds open (its ports, Redis, timers) is closed all the same.
      try {
        await broker.stop();
      } finally {
        await frontDoor?.close();
        await metricsListener?.close();
        await runtime.close();
      }
    },
  };
}
