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
  // A worker is replaced once a test file leaves it holding more than this. Files that start whole nodes leave
  // workers of 500 MB and more, whose exit (the kernel unmapping their memory, slow on a loaded VM) can take longer
  // than the half second jest allows a worker at the end of the run: jest then reports "A worker process has failed
  // to exit gracefully" although the worker had nothing left open and had reached its exit. A replaced worker is
  // small and exits sooner; on a heavily loaded machine, or when the replacement races the end of the run, the
  // warning can still appear.
  workerIdleMemoryLimit: "100MB",
  transform: { "^.+\\.ts$": ["ts-jest", {}] },
};
