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
//   O/On — the same two counts for nonlinear ops that are not activations (Softmax, LayerNorm, …).
// N itself is never formed: path counts overflow a double after a few dozen layers.

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
}

const FIELDS = ['logN', 'E', 'En', 'O', 'On'] as const;

export function unitCount(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

function alloc(n: number): UnitState {
  return {
    axes: [], dims: [], logN: new Float64Array(n), E: new Float64Array(n), En: new Float64Array(n),
    O: new Float64Array(n), On: new Float64Array(n),
  };
}

/** The state of a graph input: one path to each unit, nothing nonlinear on it yet. */
export function inputState(rank: number | undefined, axes: number[], dims: number[]): UnitState {
  const s = alloc(unitCount(dims));
  s.rank = rank;
  s.axes = [...axes];
  s.dims = [...dims];
  return s;
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

/** Row-major strides. */
function strides(dims: readonly number[]): number[] {
  const st = new Array<number>(dims.length);
  let s = 1;
  for (let i = dims.length - 1; i >= 0; i--) {
    st[i] = s;
    s *= dims[i];
  }
  return st;
}

/**
 * For each unit of a target layout, the index of the source unit it reads. `map[j]` is the target position of
 * source unit axis j; a source axis of size 1 broadcasts.
 */
function gatherIndex(srcDims: readonly number[], map: readonly number[], dstDims: readonly number[]): Int32Array {
  const n = unitCount(dstDims);
  const out = new Int32Array(n);
  const dst = strides(dstDims);
  const src = strides(srcDims);
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
  const r = alloc(idx.length);
  r.rank = rank;
  r.axes = axes;
  r.dims = dims;
  for (const f of FIELDS) {
    const a = s[f];
    const b = r[f];
    for (let i = 0; i < idx.length; i++) b[i] = a[idx[i]];
  }
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
  const n = unitCount(lay.dims);
  const r = alloc(n);
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
    for (const s of b) {
      if (s.logN[i] === -Infinity) continue;
      const x = Math.exp(s.logN[i] - m);
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
  }
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
  const keep: number[] = [];
  s.axes.forEach((a, j) => {
    if (!remove.includes(a)) keep.push(j);
  });
  if (keep.length === s.axes.length) return s;
  const axes = keep.map((j) => s.axes[j]);
  const dims = keep.map((j) => s.dims[j]);
  const n = unitCount(dims);
  const srcSt = strides(s.dims);
  const dstSt = strides(dims);
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
  for (let i = 0; i < total; i++) {
    const g = group[i];
    if (s.logN[i] === -Infinity) continue;
    const x = Math.exp(s.logN[i] - m[g]);
    w[g] += x;
    e[g] += x * s.E[i];
    o[g] += x * s.O[i];
    en[g] += s.En[i];
    on[g] += s.On[i];
    k[g]++;
  }
  const r = alloc(n);
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
  const dst = strides(dims);
  const src = strides(s.dims);
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
  const first = parts[0];
  const j = first.axes.indexOf(axis);
  const dims = [...first.dims];
  dims[j] = parts.reduce((t, p) => t + p.dims[j], 0);
  const n = unitCount(dims);
  const r = alloc(n);
  r.rank = first.rank;
  r.axes = [...first.axes];
  r.dims = dims;
  const dst = strides(dims);
  const offsets: number[] = [];
  let acc = 0;
  for (const p of parts) {
    offsets.push(acc);
    acc += p.dims[j];
  }
  const partStrides = parts.map((p) => strides(p.dims));
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
  }
  return r;
}

/**
 * Adds a per-unit indicator (1 = nonlinear) to E and En (`which` = 'act') or O and On ('other'). The
 * indicator lives on its own unit axes (an activation's channel axis); the state is broadcast to the union.
 */
export function addIndicator(
  s: UnitState, rank: number | undefined, indAxes: number[], indDims: number[], ind: ArrayLike<number>, which: 'act' | 'other',
): UnitState {
  const indState = inputState(rank, indAxes, indDims);
  const lay = unionLayout([s, indState], rank);
  if (!lay) throw new Error('internal: indicator layout does not match the state');
  const b = broadcastState(s, rank, lay.axes, lay.dims);
  const map = indAxes.map((a) => lay.axes.indexOf(a));
  const idx = gatherIndex(indDims, map, lay.dims);
  const r = { ...b, E: b.E.slice(), En: b.En.slice(), O: b.O.slice(), On: b.On.slice() };
  const [x, y] = which === 'act' ? [r.E, r.En] : [r.O, r.On];
  for (let i = 0; i < idx.length; i++) {
    x[i] += ind[idx[i]];
    y[i] += ind[idx[i]];
  }
  return r;
}

/** Adds the same count to every unit (a per-unit nonlinear op such as Softmax or LayerNorm). */
export function addEverywhere(s: UnitState, amount: number, which: 'act' | 'other'): UnitState {
  const r = { ...s, E: s.E.slice(), En: s.En.slice(), O: s.O.slice(), On: s.On.slice() };
  const [x, y] = which === 'act' ? [r.E, r.En] : [r.O, r.On];
  for (let i = 0; i < x.length; i++) {
    x[i] += amount;
    y[i] += amount;
  }
  return r;
}

/** Summary over all units of a state: total paths, N-weighted means of E and O, plain means of En and On. */
export function summarize(s: UnitState): { units: number; logPaths: number; E: number; En: number; O: number; On: number } {
  const r = reduceUnits(s, s.axes);
  const units = unitCount(s.dims);
  return { units, logPaths: r.logN[0], E: r.E[0], En: r.En[0], O: r.O[0], On: r.On[0] };
}
