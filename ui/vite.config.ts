import { defineConfig } from 'vite';
import preact from '@preact/preset-vite';

// `base: './'`: asset URLs are relative, so the same build works under `/console/` (engine)
// and from the Tauri app's own origin.
// Vite marks the entry script and stylesheet `crossorigin`; WebKitGTK then makes a CORS request
// to the app's own `tauri://` origin, which has no CORS headers, and silently drops the module
// (a blank window). Same-origin files need no CORS mode, so the attribute goes.
const sameOriginAssets = {
  name: 'same-origin-assets',
  transformIndexHtml: (html: string) => html.replace(/ crossorigin(="[^"]*")?/g, ''),
};

export default defineConfig({
  base: './',
  plugins: [preact(), sameOriginAssets],
  build: { outDir: 'dist', emptyOutDir: true, target: 'es2022', chunkSizeWarningLimit: 400 },
  server: {
    // `npm run dev` against a running engine: FN_DEV_ENGINE=http://127.0.0.1:8090
    proxy: process.env.FN_DEV_ENGINE ? { '/_fn': { target: process.env.FN_DEV_ENGINE, changeOrigin: false } } : undefined,
  },
});
