import type { ServiceBroker } from "moleculer";

interface MetricItemTimers {
  rate?: { timer?: NodeJS.Timeout };
  quantileValues?: { rotate(): void };
}

interface MetricStore {
  store: Map<string, { rate?: unknown; values: Map<string, MetricItemTimers> }>;
}

/**
 * Moleculer never stops the timers of its rate meters and of its histograms' quantile windows (the windows
 * rotate by a fresh timer each time). Each timer holds its metric and through it the broker, so a stopped
 * broker, its services and everything they reach stayed in memory for the life of the process: a process that
 * starts and stops brokers (a REPL session, the tests) kept every one.
 */
export const metricTimersMiddleware = {
  name: "MetricTimers",
  stopped(broker: ServiceBroker) {
    const registry = broker.metrics as unknown as MetricStore | undefined;
    for (const metric of registry?.store.values() ?? []) {
      // Items added after this hook get no meter: stop() itself counts its "$broker.stopped" broadcast afterwards.
      metric.rate = undefined;
      for (const item of metric.values.values()) {
        if (item.rate?.timer) clearInterval(item.rate.timer);
        // The rotation already scheduled still runs once; it finds this and schedules no other.
        if (item.quantileValues) item.quantileValues.rotate = () => undefined;
      }
    }
  },
};
