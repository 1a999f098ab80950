// tfjs-core's npm bundles register no gradients (only the @tensorflow/tfjs union package does, from an
// ESM module graph Node cannot import directly). Bundle that module into one CommonJS file at build time;
// it registers into tfjs's global gradient registry, which every copy of tfjs-core shares.
import { build } from 'esbuild';
import { createRequire } from 'node:module';
import { mkdirSync } from 'node:fs';

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
