/** @type {import('jest').Config} */
module.exports = {
  preset: "ts-jest",
  testEnvironment: "node",
  roots: ["<rootDir>/test"],
  testMatch: ["**/*.test.ts"],
  globalSetup: "<rootDir>/test/support/global-setup.ts",
  globalTeardown: "<rootDir>/test/support/global-teardown.ts",
  testTimeout: 60000,
  maxWorkers: 2,
  // At the end of a run jest gives each worker half a second to exit, then kills it and warns "A worker process
  // has failed to exit gracefully". Workers told to end hold nothing but jest's own pipes; what can outlast the half
  // second is a large worker's teardown (measured: 20-60 ms for a small worker, 150-290 ms for one that ran half
  // the suite). No workerIdleMemoryLimit: jest asks a worker for its memory after each file, and an answer over the
  // limit arriving just after the worker was told to end (seen) replaces it with one that is never told, so the
  // warning is certain. Instead `npm test` runs under --expose-gc, so that jest collects garbage after each file
  // (printing the heap left), which keeps the workers smaller.
  logHeapUsage: true,
  transform: { "^.+\\.ts$": ["ts-jest", {}] },
};
