import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tf, useBackend } from '../src/import/tfjs/backends.js';
import { scheduledLr } from '../src/train/linearize.js';
import { priorTerm, crossEntropy, distillKL, distillMSE, lambdaAt } from '../src/train/objective.js';
import { closeScaled as close } from './support/numeric.js';

await useBackend('cpu');

test('prior: λ Σ|1−a|^p by hand, and its gradient by central differences', () => {
  const a = [0, 0.5, 1.2, 0.99];
  const l1 = priorTerm([tf.tensor1d(a)], 'l1', 0.1).arraySync() as number;
  close(l1, 0.1 * (1 + 0.5 + 0.2 + 0.01));
  const lh = priorTerm([tf.tensor1d(a)], 'l0.5', 0.1).arraySync() as number;
  close(lh, 0.1 * (1 + Math.sqrt(0.5) + Math.sqrt(0.2) + Math.sqrt(0.01)), 1e-4);
  for (const kind of ['l1', 'l0.5'] as const) {
    const g = tf.grad((x: tf.Tensor) => priorTerm([x], kind, 0.3))(tf.tensor1d(a)).arraySync() as number[];
    const f = (v: number[]) => priorTerm([tf.tensor1d(v)], kind, 0.3).arraySync() as number;
    a.forEach((_, i) => {
      const h = 1e-3;
      const up = [...a]; up[i] += h;
      const dn = [...a]; dn[i] -= h;
      close(g[i], (f(up) - f(dn)) / (2 * h), 2e-2);
    });
  }
  assert.equal(lambdaAt(5, 2, 10), 1);
  assert.equal(lambdaAt(50, 2, 10), 2);
});

test('cross-entropy and distillation losses match hand computation', () => {
  const logits = [[2, 1, 0], [0, 0, 3]];
  const labels = [0, 2];
  const lse = (r: number[]) => Math.log(r.reduce((s, v) => s + Math.exp(v), 0));
  const ce = (lse(logits[0]) - 2 + lse(logits[1]) - 3) / 2;
  close(crossEntropy(tf.tensor2d(logits), tf.tensor1d(labels)).arraySync() as number, ce);
  const teacher = [[1, 1, 0], [0, 2, 1]];
  const T = 2;
  const sm = (r: number[]) => { const z = r.map((v) => Math.exp(v / T)); const s = z.reduce((a, b) => a + b); return z.map((v) => v / s); };
  let kl = 0;
  teacher.forEach((t, i) => { const p = sm(t), q = sm(logits[i]); p.forEach((pi, j) => (kl += pi * Math.log(pi / q[j]))); });
  close(distillKL(tf.tensor2d(logits), tf.tensor2d(teacher), T).arraySync() as number, (kl / 2) * T * T);
  close(distillKL(tf.tensor2d(teacher), tf.tensor2d(teacher), T).arraySync() as number, 0);
  close(distillMSE(tf.tensor2d(logits), tf.tensor2d(teacher)).arraySync() as number, (1 + 0 + 0 + 0 + 4 + 4) / 6);
});

test('learning-rate schedule restarts at the fine-tuning phase', () => {
  const p = { schedule: 'cosine' as const, gamma: 0.5, stepEvery: 1, priorSteps: 100, totalSteps: 150, stepsPerEpoch: 10 };
  assert.equal(scheduledLr(0, 1, p), 1);
  assert.ok(Math.abs(scheduledLr(50, 1, p) - 0.5) < 1e-12);
  assert.ok(scheduledLr(99, 1, p) < 1e-3);
  assert.equal(scheduledLr(100, 0.3, p), 0.3);
  assert.ok(Math.abs(scheduledLr(125, 1, p) - 0.5) < 1e-12);
  const step = { ...p, schedule: 'step' as const };
  assert.equal(scheduledLr(25, 1, step), 0.25);
  assert.equal(scheduledLr(105, 1, step), 1);
  assert.equal(scheduledLr(125, 1, step), 0.25);
});
