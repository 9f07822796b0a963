import { TestEnvironment } from "jest-environment-node";

/**
 * Jest's node environment, and a worker that exits as soon as it has nothing left to do. Told to end, a worker holds
 * nothing but jest's own pipes (a stopped node leaves no timer, server or socket: test/integration/node-stop.test.ts),
 * yet freeing its heap of several hundred MB on the way out could take longer than the half second jest allows before
 * it kills the worker and warns "A worker process has failed to exit gracefully". process.exit() skips that freeing
 * (the system takes the memory back at once) and still runs every 'exit' listener. This module is loaded once per
 * worker, outside the test files' sandboxes; 'beforeExit' comes only when the event loop has emptied.
 */
process.once("beforeExit", (code) => process.exit(code));

export default TestEnvironment;
