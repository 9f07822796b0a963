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
  // A worker is replaced once a test file leaves it holding more than this. At the end of a run jest gives each
  // worker half a second to exit, then kills it and warns "A worker process has failed to exit gracefully".
  // Workers told to end hold nothing but jest's own pipes. The warning comes from this limit's own race: jest asks
  // a worker for its memory after each file, and an answer over the limit arriving just after the worker was told
  // to end (seen) replaces it with one that is never told. Without the limit no worker is replaced, but large
  // workers took 150-290 ms to exit, and full runs without it were less stable on this 2-core machine.
  workerIdleMemoryLimit: "100MB",
  transform: { "^.+\\.ts$": ["ts-jest", {}] },
};
