import { ServiceBroker } from "moleculer";
import type { BrokerOptions } from "moleculer";
import { metricTimersMiddleware } from "../../mixins/metric-timers.middleware";

interface HistogramItem {
  rate: { timer: NodeJS.Timeout & { _destroyed?: boolean } };
  quantileValues: { currentBucket: number; rotate(): void };
}

describe("metricTimersMiddleware", () => {
  it("stops a stopped broker's rate meters and quantile rotations, which would otherwise hold it for the life of the process", async () => {
    const broker = new ServiceBroker({ logger: false, metrics: { enabled: true }, middlewares: [metricTimersMiddleware] as unknown as BrokerOptions["middlewares"] });
    await broker.start();
    const histogram = broker.metrics.register({ type: "histogram", name: "test.duration", rate: true, quantiles: true }) as unknown as { observe(value: number): void };
    histogram.observe(5);
    const item = (histogram as unknown as { values: Map<string, HistogramItem> }).values.values().next().value!;
    expect(item.rate.timer._destroyed).toBe(false);
    await broker.stop();
    expect(item.rate.timer._destroyed).toBe(true);
    const bucket = item.quantileValues.currentBucket;
    item.quantileValues.rotate();
    expect(item.quantileValues.currentBucket).toBe(bucket);
  });

  it("gives no rate meter to what the broker counts after the hook: stop() counts its own $broker.stopped event", async () => {
    const broker = new ServiceBroker({ logger: false, metrics: { enabled: true }, middlewares: [metricTimersMiddleware] as unknown as BrokerOptions["middlewares"] });
    await broker.start();
    await broker.stop();
    const counter = broker.metrics.getMetric("moleculer.event.broadcast-local.total") as unknown as { values: Map<string, { labels: { event: string }; rate?: unknown }> };
    const stopped = [...counter.values.values()].find((item) => item.labels.event === "$broker.stopped");
    expect(stopped).toBeDefined();
    expect(stopped?.rate).toBeUndefined();
  });
});
