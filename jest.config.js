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
  // worker half a second to exit and otherwise kills it with "A worker process has failed to exit gracefully".
  // Instrumented runs showed the workers holding nothing but jest's own pipes when told to end, and gone before
  // 400 ms had passed on their clock, yet the warning came: exiting a large worker (freeing its memory, stopping
  // native thread pools) can outlast the half second on a loaded machine. Both full runs without this limit
  // warned; with it, small replaced workers exit in time and the warning is rare, left only when a replacement
  // is still starting as the run ends.
  workerIdleMemoryLimit: "100MB",
  transform: { "^.+\\.ts$": ["ts-jest", {}] },
};
