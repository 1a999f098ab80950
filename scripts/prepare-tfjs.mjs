// Build-time files for TensorFlow.js, written to build/ at install.
// Gradients: tfjs-core's npm bundles register no gradients (only the @tensorflow/tfjs union package does, from an
// ESM module graph Node cannot import directly). Bundle that module into one CommonJS file at build time;
// it registers into tfjs's global gradient registry, which every copy of tfjs-core shares.
import { build } from 'esbuild';
import { createRequire } from 'node:module';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';

const require = createRequire(import.meta.url);
const entry = require.resolve('@tensorflow/tfjs-core/dist/register_all_gradients.js');
mkdirSync('build', { recursive: true });
await build({
  entryPoints: [entry],
  bundle: true,
  platform: 'node',
  format: 'cjs',
  outfile: 'build/tfjs-gradients.cjs',
  logLevel: 'error',
  legalComments: 'none',
});

// The threaded wasm build's pthread worker, as a file: tfjs-backend-wasm ships it as a string and hands it
// to workers as a blob: URL, which Node's worker_threads cannot load (src/import/tfjs/backends.ts).
const { wasmWorkerContents } = require('@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.worker.js');
// the string holds "\n" escapes that must stay escapes inside the script's string literals
writeFileSync('build/tfjs-wasm-worker.cjs.tmp', wasmWorkerContents.replace(/\n/g, '\\n'));
renameSync('build/tfjs-wasm-worker.cjs.tmp', 'build/tfjs-wasm-worker.cjs');
