// Scale-out: a sweep spread over jobs the way Slurm job arrays and Kubernetes Indexed Jobs run them — the
// examples' own commands, run here with the schedulers' environment variables, several indices at once, one
// killed and rerun — merged by `linfold collect`, must equal the same sweep run in one process, number for
// number (seeded runs are deterministic with LINFOLD_THREADS=1). The sweep is tiny: 2 λ × 2 priors × 2 seeds ×
// (post-training, from scratch) = 16 points of 2 steps each on 200 MNIST digits.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { collect, inputFingerprints, jobPoints, mergeSweep, resolveIndex, sweep, sweepPlan } from '../src/sweep.js';
import { arrays } from '../src/train/data.js';
import { loadModel } from '../src/import/onnx-io.js';
import { mnistNpy } from './support/npy.js';
import { LINFOLD, start } from './support/cli.js';
import { tempDir } from './support/tmp.js';

const CLI = LINFOLD;
const tmp = tempDir('scale');

// 200 digits in a seeded order (160 train, 40 validation)
const digits = mnistNpy(tmp, 200, 1);
// two cosine-scheduled steps with this slope learning rate take some slopes to 1: NAPL differs between points
const TINY = ['--lambdas', '0.001,0.05', '--priors', 'l1,l0.5', '--seeds', '0,1', '--from-scratch', '--data', digits.x, '--labels', digits.y, '--steps', '2', '--slope-lr', '0.667', '--no-fold'];
const GRID = 16;
// the README's sweep, which both examples run
const README_SWEEP = /linfold sweep (fixtures\/mnist_cnn\.onnx --lambdas [\d.,]+ --from-scratch --epochs \d+)/.exec(readFileSync('README.md', 'utf8'))![1];
const README_POINTS = sweepPlan({ lambdas: /--lambdas ([\d.,]+)/.exec(README_SWEEP)![1].split(',').map(Number), fromScratch: true }).length;

const run = (cmd: string[], env?: Record<string, string>) => start(cmd, env).done;
const linfold = (args: string[], env?: Record<string, string>) => run([...CLI, ...args], env);
/** The merged table without what is measured rather than computed (latency). */
const table = (dir: string) => {
  const s = JSON.parse(readFileSync(join(dir, 'sweep.json'), 'utf8'));
  return { baseline: s.baseline, points: s.points.map(({ latencyMs, latencyMsBefore, ...p }: Record<string, unknown>) => p) };
};

let single: Promise<ReturnType<typeof table>> | undefined;
/** The reference: the same sweep in one process. */
function singleMachine() {
  single ??= (async () => {
    const out = join(tmp, 'single');
    const r = await linfold(['sweep', 'fixtures/mnist_cnn.onnx', ...TINY, '--out', out, '-o', join(out, 'report.html')]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /no job index .*: every point/);
    const t = table(out);
    assert.equal(t.points.length, GRID);
    assert.deepEqual(t.points.map((p: { index: number }) => p.index), [...Array(GRID).keys()]);
    assert.ok(new Set(t.points.map((p: { napl: number }) => p.napl)).size > 4, 'the points differ');
    return t;
  })();
  return single;
}

test('the grid and the job index: order, strided jobs, environment variables in order', () => {
  const plan = sweepPlan({ lambdas: [0.1, 0.2], priors: ['l1', 'l0.5'], seeds: [0, 1], fromScratch: true });
  assert.equal(plan.length, 16);
  assert.deepEqual(plan[0], { index: 0, lambda: 0.1, prior: 'l1', seed: 0, fromScratch: false, tag: 'post-l1-seed0-lambda-0.1' });
  assert.deepEqual(plan[7], { index: 7, lambda: 0.2, prior: 'l0.5', seed: 1, fromScratch: false, tag: 'post-l0.5-seed1-lambda-0.2' });
  assert.deepEqual(plan[9], { index: 9, lambda: 0.2, prior: 'l1', seed: 0, fromScratch: true, tag: 'scratch-l1-seed0-lambda-0.2' });
  // the old order (post-training λs, then from scratch) is kept for one prior and one seed: --point i still names the same run
  assert.deepEqual(sweepPlan({ lambdas: [1, 2, 3], fromScratch: true }).map((p) => [p.lambda, p.fromScratch]), [[1, false], [2, false], [3, false], [1, true], [2, true], [3, true]]);
  assert.throws(() => sweepPlan({ lambdas: [1, 1] }), /option lambdas: 1 is listed twice/);
  assert.deepEqual(jobPoints(1, 3, 8), [1, 4, 7]);
  assert.deepEqual(jobPoints(0, 16, 16), [0]);
  assert.deepEqual(jobPoints(5, 8, 4), []);
  assert.throws(() => jobPoints(0, 0, 4), /option count 0/);
  const all = { JOB_COMPLETION_INDEX: '3', SLURM_ARRAY_TASK_ID: '4', AWS_BATCH_JOB_ARRAY_INDEX: '5' };
  assert.deepEqual(resolveIndex({}, all), { index: 3, source: 'JOB_COMPLETION_INDEX' });
  assert.deepEqual(resolveIndex({}, { ...all, JOB_COMPLETION_INDEX: '' }), { index: 4, source: 'SLURM_ARRAY_TASK_ID' });
  assert.deepEqual(resolveIndex({}, { AWS_BATCH_JOB_ARRAY_INDEX: '5' }), { index: 5, source: 'AWS_BATCH_JOB_ARRAY_INDEX' });
  assert.deepEqual(resolveIndex({ index: 0 }, all), { index: 0, source: '--index' });
  assert.deepEqual(resolveIndex({ point: 2 }, all), { index: 2, source: '--point' });
  assert.equal(resolveIndex({}, {}), undefined);
  assert.throws(() => resolveIndex({}, { SLURM_ARRAY_TASK_ID: '1-3' }), /SLURM_ARRAY_TASK_ID='1-3'/);
  assert.throws(() => resolveIndex({ index: 1, point: 2 }, {}), /option index 1 and option point 2/);
});

test('Slurm: examples/slurm-array.sh as array tasks, one killed and rerun; collect equals one machine', { timeout: 240_000 }, async () => {
  const script = readFileSync('examples/slurm-array.sh', 'utf8');
  const [, lo, hi] = /^#SBATCH --array=(\d+)-(\d+)$/m.exec(script)!.map(Number);
  assert.equal(hi - lo + 1, README_POINTS, 'one array task per point of the README sweep');
  assert.ok(script.replace(/\\\n\s*/g, '').includes(`sweep ${README_SWEEP} --count ${README_POINTS} `), 'the script runs the README sweep');
  const ref = singleMachine();
  const out = join(tmp, 'slurm');
  // as Slurm runs `sbatch --array=0-2 examples/slurm-array.sh --count 3 …`: 3 tasks at once, each its own index
  const task = (i: number) => start(['bash', 'examples/slurm-array.sh', ...TINY, '--count', '3'], {
    SLURM_ARRAY_JOB_ID: '4242', SLURM_ARRAY_TASK_ID: String(i), SLURM_ARRAY_TASK_COUNT: '3', SLURM_CPUS_PER_TASK: '1', LINFOLD_OUT: out, LINFOLD: CLI.join(' '),
  });
  const tasks = [0, 1, 2].map(task);
  // task 2 runs points 2, 5, 8, 11, 14: killed (SIGKILL, like a preempted node) once its first point is written
  const first = join(out, 'points', '2.json');
  while (!existsSync(first)) await new Promise((r) => setTimeout(r, 20));
  process.kill(-tasks[2].child.pid!, 'SIGKILL');
  const runs = await Promise.all(tasks.map((t) => t.done));
  assert.equal(runs[2].code, null, 'task 2 was killed');
  assert.ok(!existsSync(join(out, 'points', '14.json')), 'task 2 was killed before its last point');
  for (const i of [0, 1]) {
    assert.equal(runs[i].code, 0, runs[i].stderr);
    assert.match(runs[i].stderr, new RegExp(`job index ${i} from SLURM_ARRAY_TASK_ID of --count 3`));
  }
  // what a kill can leave behind is never read as done: a half-copied point file
  writeFileSync(join(out, 'points', '8.json'), '{"schema": 1, "status": "done", "result": {"valAcc');
  assert.deepEqual(collect(out).missing, [5, 8, 11, 14]);
  const before = readFileSync(first, 'utf8');
  // the rerun (Slurm requeues the task): point 2 is skipped, the others are done
  const again = await task(2).done;
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stderr, /point 2\/15 \(post-l1-seed1-lambda-0\.001\): done already/);
  assert.equal(readFileSync(first, 'utf8'), before, 'point 2 was not redone');
  const c = await linfold(['collect', out, '--require-all']);
  assert.equal(c.code, 0, c.stderr);
  assert.match(c.stdout, /16 of 16 points done/);
  assert.deepEqual(table(out), await ref);
  assert.match(readFileSync(join(out, 'sweep-report.html'), 'utf8'), /id="chart-sweep"/);
  // each point file holds what reproduces it: the command, the index it came from, versions, seed, input hashes
  const p = JSON.parse(readFileSync(join(out, 'points', '5.json'), 'utf8'));
  assert.equal(p.indexSource, 'SLURM_ARRAY_TASK_ID');
  assert.deepEqual(p.point, { index: 5, lambda: 0.05, prior: 'l0.5', seed: 0, fromScratch: false, tag: 'post-l0.5-seed0-lambda-0.05' });
  assert.deepEqual(p.reproduce.slice(-4), ['--index', '5', '--count', '3']);
  assert.ok(p.command.includes('--steps') && p.command.includes('--count'));
  assert.match(p.inputs.model, /^sha256:[0-9a-f]{64}$/);
  assert.match(p.inputs.data, /^sha256:[0-9a-f]{64}$/);
  assert.equal(p.versions.node, process.version);
  assert.match(p.versions['onnxruntime-node'], /^\d+\.\d+\.\d+/);
  // report --merge's merging reads point files too
  const files = readdirSync(join(out, 'points')).filter((f) => /^\d+\.json$/.test(f)).map((f) => join(out, 'points', f));
  assert.deepEqual(mergeSweep(files).points, table(out).points);
});

test('Kubernetes: the Indexed Job of examples/k8s-indexed-job.yaml, its pods run here; collect equals one machine', { timeout: 240_000 }, async () => {
  const job = JSON.parse(execFileSync('python3', ['-c', 'import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))', 'examples/k8s-indexed-job.yaml'], { encoding: 'utf8' }));
  assert.equal(job.kind, 'Job');
  assert.equal(job.spec.completionMode, 'Indexed');
  const pod = job.spec.template.spec;
  assert.equal(pod.restartPolicy, 'Never');
  const c = pod.containers[0];
  const argv: string[] = [...c.command, ...c.args];
  assert.equal(job.spec.completions, README_POINTS, 'one pod per point of the README sweep');
  assert.ok(argv.join(' ').includes(`sweep ${README_SWEEP} --count ${job.spec.completions} `), 'the Job runs the README sweep');
  const mount: string = c.volumeMounts[0].mountPath;
  assert.ok(c.workingDir.startsWith(`${mount}/`) && argv.some((a) => a.startsWith(`${mount}/`)), 'the code and the output are on the shared volume');
  const ref = singleMachine();
  // the pod's command with `npx linfold` run from source, the checkout on the volume = this one, the volume = a
  // temp folder; then the tiny sweep spread over 3 pods (points 0, 3, 6, …; 1, 4, …; 2, 5, …)
  const shared = join(tmp, 'k8s');
  const cmd = [...CLI, ...argv.slice(c.command.length).map((a) => (a.startsWith(`${mount}/`) ? join(shared, a.slice(mount.length)) : a)), ...TINY, '--count', '3'];
  assert.deepEqual(c.command, ['npx', '--no-install', 'linfold']);
  const env = Object.fromEntries(c.env.map((e: { name: string; value: string }) => [e.name, e.value]));
  // LINFOLD_THREADS=1 here as everywhere in the tests (the threads do not change results, but the machine is small)
  const pods = await Promise.all([0, 1, 2].map((i) => run(cmd, { ...env, LINFOLD_THREADS: '1', JOB_COMPLETION_INDEX: String(i) })));
  pods.forEach((r, i) => {
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, new RegExp(`job index ${i} from JOB_COMPLETION_INDEX of --count 3`));
  });
  const out = join(shared, 'sweep-out');
  const col = await linfold(['collect', out, '--require-all', '--json']);
  assert.equal(col.code, 0, col.stderr);
  assert.deepEqual(JSON.parse(col.stdout).missing, []);
  assert.deepEqual(table(out), await ref);
});

test('a failed point is recorded and listed; wrong indices and another sweep in the folder are refused', { timeout: 120_000 }, async () => {
  const out = join(tmp, 'fail');
  // λ = 1e38: the prior overflows float32 at the first step
  const r = await linfold(['sweep', 'fixtures/mnist_cnn.onnx', '--lambdas', '0.001,1e38', '--data', digits.x, '--labels', digits.y, '--steps', '1', '--no-fold', '--quiet', '--out', out, '--index', '1']);
  assert.equal(r.code, 3, r.stderr);
  assert.match(r.stderr, /^linfold: point 1 failed: loss became .* at step 1/m);
  const failed = JSON.parse(readFileSync(join(out, 'points', '1.failed.json'), 'utf8'));
  assert.equal(failed.status, 'failed');
  assert.match(failed.error, /loss became/);
  assert.ok(!existsSync(join(out, 'points', '1.json')));
  const c = await linfold(['collect', out, '--require-all']);
  assert.equal(c.code, 1);
  assert.match(c.stderr, /^missing: 0 /m);
  assert.match(c.stderr, /^failed: 1: loss became/m);
  assert.match(c.stderr, /^linfold: --require-all: 2 of 2 points not done \(missing: 0; failed: 1\)$/m);
  assert.deepEqual(collect(out).failed.map((f) => f.index), [1]);
  // the same sweep from the library: the index must fall on the grid; the folder belongs to this sweep
  const model = loadModel('fixtures/mnist_cnn.onnx');
  const opts = { data: arrays(digits.x, { labels: digits.y }), lambdas: [0.001, 1e38], maxSteps: 1, epochs: 2, lr: 1e-3, slopeLr: 2e-2, backend: 'auto' as const, fold: false, quiet: true, outDir: out, inputs: inputFingerprints('fixtures/mnist_cnn.onnx', digits.x, digits.y) };
  await assert.rejects(sweep(model, { ...opts, index: 2, indexSource: 'SLURM_ARRAY_TASK_ID' }), /^LinfoldError: SLURM_ARRAY_TASK_ID=2: the sweep has 2 points \(indices 0\.\.1\)/);
  await assert.rejects(sweep(model, { ...opts, maxSteps: 3, index: 0 }), /plan\.json: .* holds another sweep \(maxSteps: 1 there, 3 now\)/);
  assert.ok(!existsSync(join(out, 'points', '0.json')));
  assert.throws(() => collect(join(tmp, 'nowhere')), /nowhere: no plan\.json here/);
});
