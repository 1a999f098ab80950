// Shape arithmetic on concrete dims, shared by the shape rules, the tfjs kernels, the fold passes, analysis and
// the native backend. Symbolic dims have their own rules next to the static shape inference (ops/common.ts).

/** Number of elements of a shape (1 for a scalar). */
export function product(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

/** Row-major (C order) strides of a shape, in elements. */
export function rowMajorStrides(dims: readonly number[]): number[] {
  const s = new Array<number>(dims.length);
  let n = 1;
  for (let k = dims.length - 1; k >= 0; k--) {
    s[k] = n;
    n *= dims[k];
  }
  return s;
}

/** A possibly negative axis counted from the front (no range check: callers that take user input check it). */
export const normAxis = (axis: number, rank: number): number => (axis < 0 ? axis + rank : axis);

/** Numpy broadcast of concrete shapes; a dim that cannot broadcast is NaN. */
export function broadcastDims(...shapes: readonly number[][]): number[] {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    let d = 1;
    for (const s of shapes) {
      const v = s[s.length - rank + i] ?? 1;
      if (v !== 1) d = d === 1 || d === v ? v : NaN;
      else if (d === 1) d = v;
    }
    out.push(d);
  }
  return out;
}

/**
 * Output size of a Conv or pool along one spatial axis: input `x`, kernel `k`, stride `s`, dilation `d`, pads
 * `pb` before and `pe` after (explicit pads; auto_pad is resolved by the caller), floor or ceil mode.
 */
export function convOutSize(x: number, k: number, s: number, d: number, pb: number, pe: number, ceil = false): number {
  const v = (x + pb + pe - (k - 1) * d - 1) / s;
  return (ceil ? Math.ceil(v) : Math.floor(v)) + 1;
}
