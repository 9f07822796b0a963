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
  // No workerIdleMemoryLimit: a worker replaced for its size after a file could still be starting when jest ended
  // the run, and that replacement never got the end message, so jest killed it and printed "A worker process has
  // failed to exit gracefully". Nodes now let go of what they hold when they stop, so a worker's heap levels off
  // instead of growing with every file that starts one.
  transform: { "^.+\\.ts$": ["ts-jest", {}] },
};
