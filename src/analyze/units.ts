// Per-unit path state and its algebra, in log space.
//
// A tensor's *units* are its channels: the entries along its unit axes (usually one axis: 1 for NCHW,
// the last axis for [batch, tokens, features]). Positions (batch, spatial, token axes) are not units. A
// tensor can carry several unit axes (an attention head split [B, heads, T, d] has axes 1 and 3), so that
// reshapes and transposes of the channel dimension are tracked exactly; the values are stored flat,
// row-major over the unit axes in ascending order.
//
// Per unit the state holds
//   logN — log of the number of paths from the graph input to the unit (−∞: no path),
//   E    — mean number of nonlinear activation units on those paths, uniform over paths,
//   En   — the same, normalized: 1/k per branch at a merge of k, uniform over units inside a layer,
//   O/On — the same two counts for nonlinear ops that are not activations (Softmax, LayerNorm, …),
//   P/Pn — the distributions whose means are E/En: P[k] = share of the paths to the unit (uniform over
//          paths / under the normalized walk) that meet exactly k nonlinear activation units.
// Every rule mixes P with exactly the weights it uses for E (path counts, in log space) and Pn with the
// weights of En (uniform), and an activation shifts P/Pn by one on its nonlinear units where it adds 1 to
// E/En, so the means agree with E/En up to rounding. P/Pn have kLen entries per unit (k = 0 … kLen − 1: one
// more than the most activation layers a path to the state crosses, so never more than the graph's
// activation layers + 1; nothing is truncated). Vectors are stored once when every unit has the same ones
// (the common case: a dense layer gives all its outputs the same paths), else one row per unit.
//
// Per-layer contributions. For fixed path counts E and En are linear in the activations' 0/1 indicators,
// with the weights above. Each state records how its E/En were made from other states' (`org`, a node of
// that linear map: gather, merge, reduction, activation); `contributions` runs the map backwards once from
// an output — the adjoint of unit u is the share of the output's paths (uniform / normalized) that cross u
// — and layer ℓ's contribution is Σ over its units of adjoint × indicator: the expected number of ℓ's
// nonlinear units on a path, summing to E/En over layers. One backward pass over all units, instead of a
// per-layer vector carried by every unit.
//
// N itself is never formed: path counts overflow a double after a few dozen layers.
import { rowMajorStrides } from '../import/shape-math.js';

export interface UnitState {
  /** Rank of the tensor; undefined only when `axes` is empty (a state that is the same for every entry). */
  rank?: number;
  /** Unit axes, ascending, non-negative. */
  axes: number[];
  /** Size of each unit axis. */
  dims: number[];
  logN: Float64Array;
  E: Float64Array;
  En: Float64Array;
  O: Float64Array;
  On: Float64Array;
  /** Count distributions P/Pn. */
  v: PathVectors;
  /** How E/En were computed (for the per-layer contributions). */
  org: Origin;
  /**
   * Set once the propagation has dropped the distributions (`v` empty) because no op reads the value any
   * more: the other fields stay valid; reading the distributions is a bug and throws.
   */
  released?: boolean;
}

/**
 * The distributions of a state, stored for `rows` units: 1 when every unit has the same ones, else one row
 * per unit. Component-major: P[k·rows + u].
 */
export interface PathVectors {
  rows: number;
  /** Entries per unit (k = 0 … kLen − 1). */
  kLen: number;
  /** Share of the paths to the unit that meet exactly k nonlinear activation units (Σ_k = 1, mean = E). */
  P: Float64Array;
  /** The same under the normalized walk (mean = En). */
  Pn: Float64Array;
}

/**
 * A node of the linear map from activation indicators to E/En (`n` units). Kinds:
 * - input: no dependence;
 * - gather: unit u = unit idx[u] of ins[part[u]] (part omitted: ins[0]) — broadcasts, transposes, slices,
 *   concatenations;
 * - merge: unit u = Σ_j a[j][u]·(unit u of ins[j]) for E, with c[j][u] for En;
 * - reduce: out unit group[i] collects a[0][i]·(unit i of ins[0]) for E, c[0][i]· for En;
 * - act: unit u = unit u of ins[0] + ind[u], the indicator of activation layer `layer`.
 */
export interface Origin {
  seq: number;
  n: number;
  kind: 'input' | 'gather' | 'merge' | 'reduce' | 'act';
  ins: Origin[];
  idx?: Int32Array;
  part?: Int32Array;
  a?: Float64Array[];
  c?: Float64Array[];
  group?: Int32Array;
  layer?: number;
  ind?: Float64Array;
}

const FIELDS = ['logN', 'E', 'En', 'O', 'On'] as const;
const EMPTY = new Float64Array(0);
const RELEASED: PathVectors = { rows: 0, kLen: 0, P: EMPTY, Pn: EMPTY };
/** Every unit: all paths meet 0 nonlinear units. */
const START: PathVectors = { rows: 1, kLen: 1, P: Float64Array.of(1), Pn: Float64Array.of(1) };

let seq = 0;
function origin(n: number, kind: Origin['kind'], ins: Origin[], extra: Partial<Origin> = {}): Origin {
  // every field present, in one order: one object shape for all kinds
  return {
    seq: seq++, n, kind, ins, idx: extra.idx, part: extra.part, a: extra.a, c: extra.c, group: extra.group,
    layer: extra.layer, ind: extra.ind,
  };
}

export function unitCount(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

/** Scalars allocated (zero); the caller sets v and org. */
function alloc(n: number, org: Origin): UnitState {
  return {
    axes: [], dims: [], logN: new Float64Array(n), E: new Float64Array(n), En: new Float64Array(n),
    O: new Float64Array(n), On: new Float64Array(n), v: START, org,
  };
}

/** Throws when a state whose distributions were released is read (a liveness bug in the propagation). */
function live(s: UnitState): void {
  if (s.released) throw new Error('linfold: path-length distributions of a released state were read (propagation liveness bug)');
}

// ---- distribution helpers (component-major, so every rule is a few flat loops over units) ----

function vecs(rows: number, kLen: number): PathVectors {
  return { rows, kLen, P: new Float64Array(rows * kLen), Pn: new Float64Array(rows * kLen) };
}

/** One row per unit (n units). */
function expandVecs(v: PathVectors, n: number): PathVectors {
  if (v.rows === n) return v;
  if (v.rows !== 1) throw new Error(`linfold: path distributions stored for ${v.rows} units, expected 1 or ${n}`);
  const rep = (a: Float64Array) => {
    const out = new Float64Array(v.kLen * n);
    for (let c = 0; c < v.kLen; c++) out.fill(a[c], c * n, c * n + n);
    return out;
  };
  return { rows: n, kLen: v.kLen, P: rep(v.P), Pn: rep(v.Pn) };
}

/** out[c·m + u] = src[c·ns + idx[u]], m = idx.length. */
function gatherVec(src: Float64Array, ns: number, comps: number, idx: Int32Array): Float64Array {
  const m = idx.length;
  const out = new Float64Array(comps * m);
  for (let c = 0; c < comps; c++) {
    const a = c * m;
    const b = c * ns;
    for (let u = 0; u < m; u++) out[a + u] = src[b + idx[u]];
  }
  return out;
}

/** dst[c·nd + at[u]] += wts[u] · src[c·ns + u] for c < comps, u < ns (at = identity when omitted: nd = ns). */
function mixInto(dst: Float64Array, nd: number, src: Float64Array, ns: number, comps: number, wts: ArrayLike<number>, at?: Int32Array): void {
  for (let c = 0; c < comps; c++) {
    const a = c * nd;
    const b = c * ns;
    if (at) for (let u = 0; u < ns; u++) dst[a + at[u]] += wts[u] * src[b + u];
    else for (let u = 0; u < ns; u++) dst[a + u] += wts[u] * src[b + u];
  }
}

/** Both stored once, with the same entries. */
function sameUniform(a: PathVectors, b: PathVectors): boolean {
  if (a === b) return a.rows === 1;
  if (a.rows !== 1 || b.rows !== 1 || a.kLen !== b.kLen) return false;
  for (let c = 0; c < a.kLen; c++) if (a.P[c] !== b.P[c] || a.Pn[c] !== b.Pn[c]) return false;
  return true;
}

/** The state of a graph input: one path to each unit, nothing nonlinear on it yet. */
export function inputState(rank: number | undefined, axes: number[], dims: number[]): UnitState {
  const n = unitCount(dims);
  const s = alloc(n, origin(n, 'input', []));
  s.rank = rank;
  s.axes = [...axes];
  s.dims = [...dims];
  return s;
}

/** The state without its distributions: what the propagation keeps for values no op reads any more. */
export function releaseVectors(s: UnitState): UnitState {
  return { ...s, v: RELEASED, released: true };
}

/** A unit reached by no path (a constant channel concatenated to dynamic ones). */
export function emptyState(rank: number | undefined, axes: number[], dims: number[]): UnitState {
  const s = inputState(rank, axes, dims);
  s.logN.fill(-Infinity);
  return s;
}

/** log Σ exp(v) over the given values, −∞ for none. */
export function logSumExp(values: ArrayLike<number>): number {
  let m = -Infinity;
  for (let i = 0; i < values.length; i++) if (values[i] > m) m = values[i];
  if (m === -Infinity) return -Infinity;
  if (m === Infinity) return Infinity;
  let s = 0;
  for (let i = 0; i < values.length; i++) s += Math.exp(values[i] - m);
  return m + Math.log(s);
}

/**
 * For each unit of a target layout, the index of the source unit it reads. `map[j]` is the target position of
 * source unit axis j; a source axis of size 1 broadcasts.
 */
function gatherIndex(srcDims: readonly number[], map: readonly number[], dstDims: readonly number[]): Int32Array {
  const n = unitCount(dstDims);
  const out = new Int32Array(n);
  const dst = rowMajorStrides(dstDims);
  const src = rowMajorStrides(srcDims);
  for (let i = 0; i < n; i++) {
    let k = 0;
    for (let j = 0; j < srcDims.length; j++) {
      if (srcDims[j] === 1) continue;
      const p = map[j];
      k += (Math.floor(i / dst[p]) % dstDims[p]) * src[j];
    }
    out[i] = k;
  }
  return out;
}

function pick(s: UnitState, idx: Int32Array, rank: number | undefined, axes: number[], dims: number[]): UnitState {
  live(s);
  const r = alloc(idx.length, origin(idx.length, 'gather', [s.org], { idx }));
  r.rank = rank;
  r.axes = axes;
  r.dims = dims;
  for (const f of FIELDS) {
    const a = s[f];
    const b = r[f];
    for (let i = 0; i < idx.length; i++) b[i] = a[idx[i]];
  }
  const v = s.v;
  r.v = v.rows === 1 ? v : { rows: idx.length, kLen: v.kLen, P: gatherVec(v.P, v.rows, v.kLen, idx), Pn: gatherVec(v.Pn, v.rows, v.kLen, idx) };
  return r;
}

/**
 * Broadcasts `s` (numpy rules: ranks aligned on the right) to a layout whose unit axes include all of the
 * source's. Throws when a source unit axis is missing from the target or has a different size (callers
 * choose the target layout so that this cannot happen).
 */
export function broadcastState(s: UnitState, rank: number | undefined, axes: number[], dims: number[]): UnitState {
  const off = s.axes.length ? (rank ?? 0) - (s.rank ?? 0) : 0;
  const map = s.axes.map((a) => axes.indexOf(a + off));
  map.forEach((p, j) => {
    if (p < 0) throw new Error(`internal: unit axis ${s.axes[j]} (rank ${s.rank}) missing in target [${axes}] (rank ${rank})`);
    if (s.dims[j] !== 1 && s.dims[j] !== dims[p])
      throw new Error(`internal: unit axis of size ${s.dims[j]} broadcast to ${dims[p]}`);
  });
  if (off === 0 && sameLayout(s.axes, s.dims, axes, dims)) return s.rank === rank ? s : { ...s, rank };
  return pick(s, gatherIndex(s.dims, map, dims), rank, [...axes], [...dims]);
}

function sameLayout(a: readonly number[], ad: readonly number[], b: readonly number[], bd: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i] && ad[i] === bd[i]);
}

/** The union of several states' unit axes (aligned to `rank`), with the sizes they agree on. */
export function unionLayout(states: UnitState[], rank: number | undefined): { axes: number[]; dims: number[] } | undefined {
  const size = new Map<number, number>();
  for (const s of states) {
    const off = s.axes.length ? (rank ?? 0) - (s.rank ?? 0) : 0;
    for (let j = 0; j < s.axes.length; j++) {
      const a = s.axes[j] + off;
      if (a < 0) return undefined;
      const d = s.dims[j];
      const prev = size.get(a);
      if (prev === undefined || prev === 1) size.set(a, d);
      else if (d !== 1 && d !== prev) return undefined;
    }
  }
  const axes = [...size.keys()].sort((x, y) => x - y);
  return { axes, dims: axes.map((a) => size.get(a)!) };
}

/**
 * A merge of branches that all reach the same units (Add, Sum, a gating Mul, …):
 * logN = logsumexp of the branches, E = N-weighted mean, En = plain mean over the branches that reach the unit.
 */
export function mergeStates(states: UnitState[], rank: number | undefined, layout?: { axes: number[]; dims: number[] }): UnitState {
  if (states.length === 1 && !layout) return states[0];
  const lay = layout ?? unionLayout(states, rank);
  if (!lay) return mergeStates(states.map(collapseState), undefined);
  const b = states.map((s) => broadcastState(s, rank, lay.axes, lay.dims));
  b.forEach(live);
  const n = unitCount(lay.dims);
  // per branch and unit: its share of the paths (E, P) and of the normalized walk (En, Pn); 0 = no path
  const a = b.map(() => new Float64Array(n));
  const c = b.map(() => new Float64Array(n));
  const r = alloc(n, origin(n, 'merge', b.map((s) => s.org), { a, c }));
  r.rank = rank;
  r.axes = [...lay.axes];
  r.dims = [...lay.dims];
  for (let i = 0; i < n; i++) {
    let m = -Infinity;
    for (const s of b) if (s.logN[i] > m) m = s.logN[i];
    if (m === -Infinity) {
      r.logN[i] = -Infinity;
      continue;
    }
    let w = 0, e = 0, o = 0, en = 0, on = 0, k = 0;
    for (let j = 0; j < b.length; j++) {
      const s = b[j];
      if (s.logN[i] === -Infinity) continue;
      const x = Math.exp(s.logN[i] - m);
      a[j][i] = x;
      c[j][i] = 1;
      w += x;
      e += x * s.E[i];
      o += x * s.O[i];
      en += s.En[i];
      on += s.On[i];
      k++;
    }
    r.logN[i] = m + Math.log(w);
    r.E[i] = e / w;
    r.O[i] = o / w;
    r.En[i] = en / k;
    r.On[i] = on / k;
    for (let j = 0; j < b.length; j++) {
      a[j][i] /= w;
      c[j][i] /= k;
    }
  }
  r.v = mergeVecs(b.map((s) => s.v), n, a, c);
  return r;
}

/**
 * The distributions of a merge: Σ_j a[j]·P_j and Σ_j c[j]·Pn_j per unit. Stored once when every branch's
 * are and each branch's two shares are the same on every unit some path reaches.
 */
function mergeVecs(vs: PathVectors[], n: number, a: Float64Array[], c: Float64Array[]): PathVectors {
  const K = Math.max(...vs.map((v) => v.kLen));
  const reached = (i: number) => c.some((cj) => cj[i] !== 0);
  let i0 = 0;
  while (i0 < n && !reached(i0)) i0++;
  let uniform = vs.every((v) => v.rows === 1);
  for (let i = i0 + 1; i < n && uniform; i++) {
    if (!reached(i)) continue;
    for (let j = 0; j < vs.length && uniform; j++) uniform = a[j][i] === a[j][i0] && c[j][i] === c[j][i0];
  }
  if (uniform) {
    const r = vecs(1, K);
    if (i0 === n) return r;
    vs.forEach((v, j) => {
      mixInto(r.P, 1, v.P, 1, v.kLen, [a[j][i0]]);
      mixInto(r.Pn, 1, v.Pn, 1, v.kLen, [c[j][i0]]);
    });
    return r;
  }
  const r = vecs(n, K);
  vs.forEach((v0, j) => {
    const v = expandVecs(v0, n);
    mixInto(r.P, n, v.P, n, v.kLen, a[j]);
    mixInto(r.Pn, n, v.Pn, n, v.kLen, c[j]);
  });
  return r;
}

/**
 * Dense reduction over some unit axes (a Conv/Gemm/MatMul contracting them, ReduceSum over channels):
 * every remaining unit collects all paths through the reduced units — logN = logsumexp, E = N-weighted
 * mean, En = plain mean (a unit of the layer below, chosen uniformly). `mean` = true divides the path count
 * by the number of reduced units (log-mean-exp): used when a layout is lost and the units are averaged, not
 * summed. The remaining axes keep their positions.
 */
export function reduceUnits(s: UnitState, remove: number[], mean = false): UnitState {
  live(s);
  const keep: number[] = [];
  s.axes.forEach((a, j) => {
    if (!remove.includes(a)) keep.push(j);
  });
  if (keep.length === s.axes.length) return s;
  const axes = keep.map((j) => s.axes[j]);
  const dims = keep.map((j) => s.dims[j]);
  const n = unitCount(dims);
  const srcSt = rowMajorStrides(s.dims);
  const dstSt = rowMajorStrides(dims);
  const total = unitCount(s.dims);
  const group = new Int32Array(total);
  for (let i = 0; i < total; i++) {
    let g = 0;
    keep.forEach((j, p) => {
      g += (Math.floor(i / srcSt[j]) % s.dims[j]) * dstSt[p];
    });
    group[i] = g;
  }
  const m = new Float64Array(n).fill(-Infinity);
  for (let i = 0; i < total; i++) if (s.logN[i] > m[group[i]]) m[group[i]] = s.logN[i];
  const w = new Float64Array(n), e = new Float64Array(n), o = new Float64Array(n);
  const en = new Float64Array(n), on = new Float64Array(n), k = new Float64Array(n);
  // per source unit: its share of its group's paths (E, P) and of the normalized walk (En, Pn)
  const a = new Float64Array(total);
  const c = new Float64Array(total);
  for (let i = 0; i < total; i++) {
    const g = group[i];
    if (s.logN[i] === -Infinity) continue;
    const x = Math.exp(s.logN[i] - m[g]);
    a[i] = x;
    c[i] = 1;
    w[g] += x;
    e[g] += x * s.E[i];
    o[g] += x * s.O[i];
    en[g] += s.En[i];
    on[g] += s.On[i];
    k[g]++;
  }
  const r = alloc(n, origin(n, 'reduce', [s.org], { group, a: [a], c: [c] }));
  r.rank = s.rank;
  r.axes = axes;
  r.dims = dims;
  const per = total / n;
  for (let g = 0; g < n; g++) {
    if (k[g] === 0) {
      r.logN[g] = -Infinity;
      continue;
    }
    r.logN[g] = m[g] + Math.log(w[g]) - (mean ? Math.log(per) : 0);
    r.E[g] = e[g] / w[g];
    r.O[g] = o[g] / w[g];
    r.En[g] = en[g] / k[g];
    r.On[g] = on[g] / k[g];
  }
  for (let i = 0; i < total; i++) {
    if (c[i] === 0) continue;
    a[i] /= w[group[i]];
    c[i] /= k[group[i]];
  }
  // rows that are all the same stay the same under any mixing
  if (s.v.rows === 1) {
    r.v = s.v;
    return r;
  }
  const v = s.v;
  const rv = vecs(n, v.kLen);
  mixInto(rv.P, n, v.P, total, v.kLen, a, group);
  mixInto(rv.Pn, n, v.Pn, total, v.kLen, c, group);
  r.v = rv;
  return r;
}

/**
 * The average unit of a state whose layout can no longer be followed: one unit that stands for every entry
 * (path count = the mean over units, so a reshape that loses track neither creates nor destroys paths).
 */
export function collapseState(s: UnitState): UnitState {
  if (!s.axes.length) return s;
  const r = reduceUnits(s, s.axes, true);
  return { ...r, rank: undefined };
}

/** Renumbers unit axes (a transpose, squeeze, unsqueeze): data are reordered when the axis order changes. */
export function remapAxes(s: UnitState, rank: number | undefined, newAxis: (a: number) => number): UnitState {
  if (!s.axes.length) return { ...s, rank };
  const mapped = s.axes.map(newAxis);
  const order = mapped.map((_, j) => j).sort((x, y) => mapped[x] - mapped[y]);
  const axes = order.map((j) => mapped[j]);
  const dims = order.map((j) => s.dims[j]);
  const inOrder = order.every((j, p) => j === p);
  if (inOrder) return { ...s, rank, axes, dims };
  // source axis j sits at target position order.indexOf(j)
  const map = s.axes.map((_, j) => order.indexOf(j));
  return pick(s, gatherIndex(s.dims, map, dims), rank, axes, dims);
}

/** Keeps the units whose index along unit axis `axis` is listed (−1 = a unit with no path). */
export function selectUnits(s: UnitState, axis: number, indices: number[], rank = s.rank): UnitState {
  const j = s.axes.indexOf(axis);
  if (j < 0) return s;
  const dims = [...s.dims];
  dims[j] = indices.length;
  const n = unitCount(dims);
  const dst = rowMajorStrides(dims);
  const src = rowMajorStrides(s.dims);
  const idx = new Int32Array(n);
  const none = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    let k = 0;
    for (let q = 0; q < dims.length; q++) {
      const c = Math.floor(i / dst[q]) % dims[q];
      const cc = q === j ? indices[c] : c;
      if (cc < 0) none[i] = 1;
      k += Math.max(cc, 0) * src[q];
    }
    idx[i] = k;
  }
  const r = pick(s, idx, rank, [...s.axes], dims);
  for (let i = 0; i < n; i++) if (none[i]) r.logN[i] = -Infinity;
  return r;
}

/** Concatenation along a unit axis: every part already has that axis (broadcast beforehand). */
export function concatUnits(parts: UnitState[], axis: number): UnitState {
  parts.forEach(live);
  const first = parts[0];
  const j = first.axes.indexOf(axis);
  const dims = [...first.dims];
  dims[j] = parts.reduce((t, p) => t + p.dims[j], 0);
  const n = unitCount(dims);
  const part = new Int32Array(n);
  const idx = new Int32Array(n);
  const r = alloc(n, origin(n, 'gather', parts.map((p) => p.org), { part, idx }));
  r.rank = first.rank;
  r.axes = [...first.axes];
  r.dims = dims;
  const dst = rowMajorStrides(dims);
  const offsets: number[] = [];
  let acc = 0;
  for (const p of parts) {
    offsets.push(acc);
    acc += p.dims[j];
  }
  const partStrides = parts.map((p) => rowMajorStrides(p.dims));
  for (let i = 0; i < n; i++) {
    const c = Math.floor(i / dst[j]) % dims[j];
    let pi = parts.length - 1;
    while (offsets[pi] > c) pi--;
    const p = parts[pi];
    const ps = partStrides[pi];
    let k = 0;
    for (let q = 0; q < dims.length; q++) {
      const cc = Math.floor(i / dst[q]) % dims[q];
      k += (q === j ? cc - offsets[pi] : cc) * ps[q];
    }
    for (const f of FIELDS) r[f][i] = p[f][k];
    part[i] = pi;
    idx[i] = k;
  }
  r.v = placeVecs(parts.map((p) => p.v), part, idx);
  return r;
}

/** Distributions of units taken from several states: unit u = unit idx[u] of state part[u]. */
function placeVecs(vs: PathVectors[], part: Int32Array, idx: Int32Array): PathVectors {
  if (vs.every((v) => sameUniform(v, vs[0]))) return vs[0];
  const n = part.length;
  const r = vecs(n, Math.max(...vs.map((v) => v.kLen)));
  for (let u = 0; u < n; u++) {
    const v = vs[part[u]];
    const k = v.rows === 1 ? 0 : idx[u];
    for (let c = 0; c < v.kLen; c++) {
      r.P[c * n + u] = v.P[c * v.rows + k];
      r.Pn[c * n + u] = v.Pn[c * v.rows + k];
    }
  }
  return r;
}

/**
 * Single-unit states (no unit axes) laid out along one unit axis, each repeated `repeat` times: the outputs
 * of a grouped dense layer, where every output unit of group j has group j's aggregate.
 */
export function stackUnits(parts: UnitState[], repeat: number, rank: number | undefined, axis: number): UnitState {
  parts.forEach(live);
  const M = parts.length * repeat;
  const part = new Int32Array(M);
  for (let m = 0; m < M; m++) part[m] = Math.floor(m / repeat);
  const idx = new Int32Array(M);
  const r = alloc(M, origin(M, 'gather', parts.map((p) => p.org), { part, idx }));
  r.rank = rank;
  r.axes = [axis];
  r.dims = [M];
  for (let m = 0; m < M; m++) {
    const p = parts[part[m]];
    for (const f of FIELDS) r[f][m] = p[f][0];
  }
  r.v = placeVecs(parts.map((p) => p.v), part, idx);
  return r;
}

/**
 * Adds a per-unit indicator (0 = linear, 1 = nonlinear) to O and On (`which` = 'other') or, for activation
 * layer number `layer` ('act'), to E and En, shifting P/Pn by one entry on the nonlinear units. The indicator
 * lives on its own unit axes (an activation's channel axis); the state is broadcast to the union.
 */
export function addIndicator(
  s: UnitState, rank: number | undefined, indAxes: number[], indDims: number[], ind: ArrayLike<number>, which: 'act' | 'other',
  layer = -1,
): UnitState {
  const indState = inputState(rank, indAxes, indDims);
  const lay = unionLayout([s, indState], rank);
  if (!lay) throw new Error('internal: indicator layout does not match the state');
  const b = broadcastState(s, rank, lay.axes, lay.dims);
  const map = indAxes.map((a) => lay.axes.indexOf(a));
  const idx = gatherIndex(indDims, map, lay.dims);
  const n = idx.length;
  const perUnit = new Float64Array(n);
  for (let i = 0; i < n; i++) perUnit[i] = ind[idx[i]];
  if (which === 'other') {
    const r = { ...b, O: b.O.slice(), On: b.On.slice() };
    for (let i = 0; i < n; i++) {
      r.O[i] += perUnit[i];
      r.On[i] += perUnit[i];
    }
    return r;
  }
  if (!(layer >= 0)) throw new Error('linfold: addIndicator(\'act\') needs the activation layer number');
  live(b);
  const r = { ...b, E: b.E.slice(), En: b.En.slice(), org: origin(n, 'act', [b.org], { layer, ind: perUnit }) };
  let any = false;
  let same = true;
  for (let i = 0; i < n; i++) {
    r.E[i] += perUnit[i];
    r.En[i] += perUnit[i];
    if (perUnit[i] !== 0) any = true;
    if (perUnit[i] !== perUnit[0]) same = false;
  }
  // stored once and the same indicator everywhere: still once; otherwise one row per unit
  const v = b.v;
  const rows = same ? v.rows : n;
  const rv = vecs(rows, v.kLen + (any ? 1 : 0));
  // a nonlinear unit moves its count distribution up by one
  for (let c = 0; c < v.kLen; c++) {
    const o = c * rows;
    const from = c * v.rows;
    const step = v.rows === 1 ? 0 : 1;
    for (let i = 0; i < rows; i++) {
      const to = o + (perUnit[i] !== 0 ? rows : 0) + i;
      rv.P[to] = v.P[from + i * step];
      rv.Pn[to] = v.Pn[from + i * step];
    }
  }
  r.v = rv;
  return r;
}

/**
 * Adds the same count to O and On of every unit (a per-unit nonlinear op such as Softmax or LayerNorm).
 * Activations are always added per channel, with their layer number (addIndicator).
 */
export function addEverywhere(s: UnitState, amount: number, _which: 'other'): UnitState {
  const r = { ...s, O: s.O.slice(), On: s.On.slice() };
  for (let i = 0; i < r.O.length; i++) {
    r.O[i] += amount;
    r.On[i] += amount;
  }
  return r;
}

export interface StateSummary {
  units: number;
  logPaths: number;
  E: number;
  En: number;
  O: number;
  On: number;
  /** Over all paths to the state's units: P[k] = share meeting exactly k nonlinear activation units (mean = E). */
  P: Float64Array;
  /** The same under the normalized walk, units of the state equally likely (mean = En). */
  Pn: Float64Array;
}

/**
 * Summary over all units of a state: total paths, N-weighted means of E, O and P, plain means of En, On and
 * Pn (over the units some path reaches).
 */
export function summarize(s: UnitState): StateSummary {
  const r = reduceUnits(s, s.axes);
  const units = unitCount(s.dims);
  return {
    units, logPaths: r.logN[0], E: r.E[0], En: r.En[0], O: r.O[0], On: r.On[0],
    P: r.v.P.subarray(0, r.v.kLen), Pn: r.v.Pn.subarray(0, r.v.kLen),
  };
}

/**
 * Per activation layer (0 … layers − 1), the expected number of its nonlinear units on a path to the state's
 * units: uniform over all paths (apl, Σ = summarize(s).E) and under the normalized walk (napl, Σ = En). One
 * backward pass over the origins of `s`: the adjoint of a unit is the share of the paths that cross it.
 */
export function contributions(s: UnitState, layers: number): { apl: Float64Array; napl: Float64Array } {
  const apl = new Float64Array(layers);
  const napl = new Float64Array(layers);
  const top = reduceUnits(s, s.axes).org;
  // the origins s depends on, latest first
  const seen = new Set<Origin>([top]);
  const stack = [top];
  const all: Origin[] = [];
  while (stack.length) {
    const o = stack.pop()!;
    all.push(o);
    for (const i of o.ins) {
      if (seen.has(i)) continue;
      seen.add(i);
      stack.push(i);
    }
  }
  all.sort((x, y) => y.seq - x.seq);
  const adj = new Map<Origin, { a: Float64Array; c: Float64Array }>();
  const of = (o: Origin) => {
    let x = adj.get(o);
    if (!x) adj.set(o, (x = { a: new Float64Array(o.n), c: new Float64Array(o.n) }));
    return x;
  };
  const t = of(top);
  if (top.n !== 1) throw new Error('linfold: contributions: the summary of a state has one unit');
  t.a[0] = 1;
  t.c[0] = 1;
  for (const o of all) {
    const x = adj.get(o);
    if (!x) continue;
    adj.delete(o);
    const n = o.n;
    const xa = x.a;
    const xc = x.c;
    switch (o.kind) {
      case 'input':
        break;
      case 'gather': {
        const idx = o.idx!;
        if (o.part) {
          const part = o.part;
          const ins = o.ins.map(of);
          for (let u = 0; u < n; u++) {
            const y = ins[part[u]];
            y.a[idx[u]] += xa[u];
            y.c[idx[u]] += xc[u];
          }
        } else {
          const y = of(o.ins[0]);
          const ya = y.a;
          const yc = y.c;
          for (let u = 0; u < n; u++) {
            ya[idx[u]] += xa[u];
            yc[idx[u]] += xc[u];
          }
        }
        break;
      }
      case 'merge':
        o.ins.forEach((i, j) => {
          const y = of(i);
          const ya = y.a;
          const yc = y.c;
          const a = o.a![j];
          const c = o.c![j];
          for (let u = 0; u < n; u++) {
            ya[u] += a[u] * xa[u];
            yc[u] += c[u] * xc[u];
          }
        });
        break;
      case 'reduce': {
        const y = of(o.ins[0]);
        const ya = y.a;
        const yc = y.c;
        const g = o.group!;
        const a = o.a![0];
        const c = o.c![0];
        for (let i = 0; i < g.length; i++) {
          ya[i] += a[i] * xa[g[i]];
          yc[i] += c[i] * xc[g[i]];
        }
        break;
      }
      case 'act': {
        const y = of(o.ins[0]);
        const ya = y.a;
        const yc = y.c;
        const ind = o.ind!;
        let sa = 0;
        let sn = 0;
        for (let u = 0; u < n; u++) {
          sa += xa[u] * ind[u];
          sn += xc[u] * ind[u];
          ya[u] += xa[u];
          yc[u] += xc[u];
        }
        if (o.layer! < layers) {
          apl[o.layer!] += sa;
          napl[o.layer!] += sn;
        }
        break;
      }
    }
  }
  return { apl, napl };
}
