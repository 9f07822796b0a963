import type { ActionHandler, Context, ServiceBroker } from "moleculer";
import { Errors } from "moleculer";
import { ConnectionState } from "../lib/transport/connection-state";
import type { ConnectionStatus } from "../lib/transport/connection-state";

const states = new WeakMap<ServiceBroker, ConnectionState>();

interface TransitInternals {
  tx?: { client?: { status?: () => AsyncIterable<ConnectionStatus> } };
  pendingRequests: Map<string, { nodeID: string }>;
  removePendingRequestByNodeID(nodeID: string): void;
}

/** Whether this node can reach the other nodes now (true without a transporter). */
export function transporterConnected(broker: ServiceBroker): boolean {
  if (!broker.transit) return true;
  return broker.transit.connected && (states.get(broker)?.connected ?? true);
}

/**
 * While the NATS connection is down, calls to other nodes fail at once with 503 (ServiceNotAvailableError)
 * instead of waiting for the request timeout, and the calls waiting for an answer when it went down are
 * rejected (503, RequestRejectedError): their answers, sent while this node was away, are lost. The NATS
 * client reconnects by itself; calls go out again as soon as it has.
 */
export const transportFailFastMiddleware = {
  name: "TransportFailFast",
  started(broker: ServiceBroker) {
    const transit = broker.transit as unknown as TransitInternals | undefined;
    const client = transit?.tx?.client;
    if (!transit || typeof client?.status !== "function") return;
    const state = new ConnectionState();
    states.set(broker, state);
    state.onLost(() => {
      const waitingOn = new Set([...transit.pendingRequests.values()].map((request) => request.nodeID));
      for (const nodeID of waitingOn) transit.removePendingRequestByNodeID(nodeID);
    });
    state.follow(client.status()).catch((error: Error) => broker.logger.warn(`transporter status reports ended: ${error.message}`));
  },
  remoteAction(next: ActionHandler): ActionHandler {
    return (ctx: Context) => {
      const state = states.get(ctx.broker);
      if (state && !state.connected) {
        return Promise.reject(new Errors.ServiceNotAvailableError({ action: ctx.action?.name ?? "", nodeID: ctx.nodeID ?? "" }));
      }
      return next(ctx);
    };
  },
};
