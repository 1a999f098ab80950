// bench/demo: wall time of `linfold demo` on this machine (target: under 5 minutes on 2 CPU cores with the
// default backend), next to the time onnxruntime-node needs to score the same validation set with the
// original model — the floor of what any such pipeline costs.
//   node --import tsx bench/demo.ts
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import { join } from 'node:path';
import { ortAccuracy } from '../src/train/evaluate.js';
import { mnist } from '../src/train/data.js';
import { DEMO_MODEL } from '../src/demo.js';

const out = mkdtempSync(join(tmpdir(), 'linfold-demo-bench-'));
const t0 = performance.now();
const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/main.ts', 'demo', '--out', out, '--quiet'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
const wall = (performance.now() - t0) / 1000;
if (r.status !== 0) throw new Error(`demo failed (exit ${r.status})`);
const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
const t1 = performance.now();
await ortAccuracy(DEMO_MODEL, mnist());
const score = (performance.now() - t1) / 1000;
console.log(r.stdout.trim());
console.log(`\nmachine: ${cpus().length} cores (${cpus()[0]?.model})`);
console.log(`linfold demo wall time: ${wall.toFixed(1)} s (target < 300 s): ${wall < 300 ? 'ok' : 'over'}`);
console.log(`onnxruntime scoring the validation set once: ${score.toFixed(2)} s (ratio ${(wall / score).toFixed(0)}×)`);
console.log(`summary: accuracy ${(100 * summary.accuracy.before).toFixed(2)}% → ${(100 * summary.accuracy.after).toFixed(2)}%, NAPL ${summary.napl.before.toFixed(3)} → ${summary.napl.after.toFixed(3)}`);
rmSync(out, { recursive: true, force: true });
