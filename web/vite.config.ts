import preact from "@preact/preset-vite";
import { defineConfig } from "vite";

// Run as `vite build web`: this directory is the root; the build lands in dist/web, which the gateway serves.
export default defineConfig({
  plugins: [preact()],
  base: "/",
  build: {
    outDir: "../dist/web",
    emptyOutDir: true,
    assetsDir: "assets",
    target: "es2022",
    // Only when asked for (WEB_SOURCE_MAPS=true at build time); the gateway serves them under the same setting.
    sourcemap: ["true", "1", "yes"].includes(process.env.WEB_SOURCE_MAPS ?? ""),
    // Everything goes to a fingerprinted file: nothing is inlined into index.html (the CSP forbids inline code).
    assetsInlineLimit: 0,
  },
  server: {
    proxy: {
      "/api": "http://localhost:3000",
      "/files": "http://localhost:3000",
      "/socket.io": { target: "ws://localhost:3000", ws: true },
    },
  },
});
