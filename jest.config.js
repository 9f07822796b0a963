/** @type {import('jest').Config} */
module.exports = {
  preset: "ts-jest",
  // Jest's node environment; each worker exits as soon as it is told to end (see the file).
  testEnvironment: "<rootDir>/test/support/test-environment.ts",
  roots: ["<rootDir>/test"],
  testMatch: ["**/*.test.ts"],
  globalSetup: "<rootDir>/test/support/global-setup.ts",
  globalTeardown: "<rootDir>/test/support/global-teardown.ts",
  testTimeout: 60000,
  maxWorkers: 2,
  transform: { "^.+\\.ts$": ["ts-jest", {}] },
};
