import { defineConfig } from "vite";

// Served by `salestrainer up` (and the gateway) at "/"; hashed names under assets/ are cached
// forever, index.html never.
export default defineConfig({
  esbuild: { jsx: "automatic", jsxImportSource: "preact" },
  build: {
    outDir: "dist",
    assetsDir: "assets",
    emptyOutDir: true,
    // No inline module-preload polyfill script: the content-security policy allows none.
    modulePreload: { polyfill: false },
    sourcemap: false,
    reportCompressedSize: true,
    chunkSizeWarningLimit: 600,
  },
  server: {
    proxy: { "^/(salestrainer\\.|console/)": "http://127.0.0.1:50051" },
  },
});
