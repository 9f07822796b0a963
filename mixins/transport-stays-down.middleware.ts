import type { ServiceBroker } from "moleculer";

interface TransitInternals {
  tx?: { connect(): Promise<void> };
}

/**
 * Once the broker stops, its transporter does not connect again. Moleculer retries a failed connect 5 s later
 * from a timer that stopping neither clears nor checks: a node stopped while NATS was down would join the cluster
 * again when NATS came back, and a process embedding it would not end.
 */
export const transportStaysDownMiddleware = {
  name: "TransportStaysDown",
  stopping(broker: ServiceBroker) {
    const tx = (broker.transit as unknown as TransitInternals | undefined)?.tx;
    if (tx) tx.connect = () => Promise.resolve();
  },
};
