import type { ActionHandler, ActionSchema, Context, ServiceBroker } from "moleculer";
import { Errors } from "moleculer";
import { findForbiddenKey } from "../lib/security/forbidden-keys";

type LocalActionHook = (next: ActionHandler, action: ActionSchema) => ActionHandler;

/** The validator's own middleware, as Moleculer 0.14 builds it (its typings still describe the older function form). */
interface ValidatorMiddleware {
  localAction: LocalActionHook;
}

function isCached(action: ActionSchema): boolean {
  return action.cache === true || (typeof action.cache === "object" && action.cache.enabled !== false);
}

/** Runs the call unless its params hold a forbidden key; then it fails as any validation error does. */
function refusingForbiddenKeys(next: ActionHandler): ActionHandler {
  return (ctx: Context) => {
    const field = findForbiddenKey(ctx.params);
    if (field === undefined) return next(ctx);
    const error = new Errors.ValidationError("Parameters validation error!", "VALIDATION_ERROR", [
      { type: "forbiddenKey", field, message: "is not allowed as a field name", action: ctx.action?.name, nodeID: ctx.nodeID },
    ]);
    return Promise.reject(error);
  };
}

/**
 * Checks an action's params before anything else looks at them:
 * - no `__proto__` or `constructor` key at any depth, for every action (also before a call leaves
 *   for another node: serialising drops a prototype that a merge replaced, so the receiver could
 *   not see it);
 * - for cached actions, the action's own param validation, before the cache is asked. Moleculer
 *   0.14 wraps its Cacher outside its Validator, so an invalid request whose cache key matched a
 *   valid one was answered from the cache. The Validator still runs inside; validating twice is
 *   harmless, as conversions and defaults leave valid params as they are.
 *
 * Moleculer places the middlewares of the broker options innermost, under its own; this one adds
 * the checks from its `created` hook, after the broker's own middlewares, so that they wrap all of
 * them, the Cacher included. (They also sit outside the ErrorHandler and Metrics middlewares: a
 * refused call is not counted as a request.)
 */
export const paramsValidationMiddleware = {
  name: "ParamsValidation",
  created(broker: ServiceBroker) {
    const validator = (broker.validator as unknown as { middleware(broker: ServiceBroker): ValidatorMiddleware } | undefined)?.middleware(broker);
    broker.middlewares.add({
      name: "ParamsValidationFirst",
      localAction(next: ActionHandler, action: ActionSchema): ActionHandler {
        return refusingForbiddenKeys(broker.cacher && isCached(action) && validator ? validator.localAction(next, action) : next);
      },
      remoteAction(next: ActionHandler): ActionHandler {
        return refusingForbiddenKeys(next);
      },
    } as unknown as Parameters<ServiceBroker["middlewares"]["add"]>[0]);
  },
};
