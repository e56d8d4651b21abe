import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: ["src/**/*.test.ts", "node-agent/**/*.test.ts", "test/unit/**/*.test.ts"],
          environment: "node",
        },
      },
      {
        test: {
          name: "integration",
          include: ["test/integration/**/*.test.ts"],
          environment: "node",
          // Each file starts its own control plane; running them one at a time keeps a
          // 2-core machine from timing out and keeps cluster-scoped objects from colliding.
          fileParallelism: false,
          pool: "forks",
          // The components' bundles, built once for the run and removed after it.
          globalSetup: ["test/harness/components-setup.ts"],
          testTimeout: 120_000,
          hookTimeout: 180_000,
        },
      },
    ],
  },
});
