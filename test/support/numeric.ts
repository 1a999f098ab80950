// Numeric assertions shared by the tests.
import assert from 'node:assert/strict';
import { compareValues } from '../../src/import/tensor.js';

/** |a − b| ≤ tol (absolute: for values worked out by hand). */
export function close(a: number, b: number, tol = 1e-9): void {
  assert.ok(Math.abs(a - b) <= tol, `${a} ≠ ${b}`);
}

/** |a − b| ≤ tol · max(1, |b|) (relative for large b, absolute near 0). */
export function closeScaled(a: number, b: number, tol = 1e-5): void {
  assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${a} vs ${b}`);
}

/** close() element by element, same lengths. */
export function closeAll(a: number[], b: number[], tol = 1e-12): void {
  assert.equal(a.length, b.length, `[${a}] vs [${b}]`);
  a.forEach((x, i) => close(x, b[i], tol));
}

/** max |got − ref| / max |ref| (src/import/tensor.ts compareValues). */
export const maxRel = (got: ArrayLike<number>, ref: ArrayLike<number>): number => compareValues(got, ref).maxRelError;
