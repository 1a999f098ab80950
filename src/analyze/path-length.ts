// Average path length (APL) and its normalized version (NAPL, the effective depth), DESIGN.md §1.
//
// Paths run from the graph inputs to an output through units (channels). Per unit the propagation keeps
// log N (number of paths), E (mean count of nonlinear activation units on them, uniform over paths) and En
// (the normalized count: 1/k per branch at a k-way merge, uniform over units inside a layer); O and On are
// the same counts for nonlinear ops that are not activations. At an output:
//   APL  = Σ_u N_u·E_u / Σ_u N_u   (uniform over all input→output paths)
//   NAPL = mean_u En_u             (uniform over the output's units)
// Check (the paper's Figure 1): a skip around 4 hidden layers of width 4 → 257 paths, APL = 256·4/257,
// NAPL = ½·0 + ½·4 = 2.
// Beyond the means, the propagation carries per unit the whole distribution of the count (P/Pn, mixed with
// the same weights as E/En), so each output also gets
//   distribution.apl[k]  = share of its paths meeting exactly k nonlinear activation units (mean = APL),
//   distribution.napl[k] = the same under the normalized walk (mean = NAPL);
// and, from one backward pass over the linear map indicators → E/En (units.ts `contributions`), the first
// output gets per activation layer the expected number of that layer's nonlinear units on a path (uniform /
// normalized; summed over layers = APL / NAPL of activations). Figure 1: distribution.apl =
// {0: 1/257, 4: 256/257}, distribution.napl = {0: ½, 4: ½}; the 4 hidden layers contribute 256/257 each
// (APL) and ½ each (NAPL).
import type { Graph, Model } from '../import/ir.js';
import { type Propagation, propagate } from './propagate.js';
import { contributions, summarize } from './units.js';
import type { CensusOptions } from './census.js';

export interface PathLengthOptions extends CensusOptions {
  /** Add the per-path count of nonlinear non-activation ops (Softmax, LayerNorm, gating Mul, …) to APL/NAPL. */
  countOtherNonlinear?: boolean;
}

export interface PathCounts {
  /** Uniform over all input→output paths. */
  apl: number;
  /** Normalized (1/k per branch at each merge). */
  napl: number;
}

/** Probability, for k = 0, 1, …, that a path meets exactly k nonlinear activation units. */
export interface PathDistribution {
  /** Uniform over all input→output paths; mean = activations.apl. */
  apl: number[];
  /** Normalized walk (1/k per branch at a k-way merge, units uniform inside a layer); mean = activations.napl. */
  napl: number[];
}

export interface OutputPathLength {
  output: string;
  /** Units (channels) of the output the averages run over. */
  units: number;
  /** False when the output does not depend on any graph input (then all counts are 0). */
  dependsOnInput: boolean;
  /** Natural log of the number of input→output paths, summed over the output's units (null: no path). */
  logPaths: number | null;
  log10Paths: number | null;
  /** Headline values: activations only, or activations + other nonlinear ops when countOtherNonlinear is set. */
  apl: number;
  napl: number;
  /** = napl. */
  effectiveDepth: number;
  /** Nonlinear activation units per path. */
  activations: PathCounts;
  /** Nonlinear non-activation ops per path. */
  otherNonlinear: PathCounts;
  /**
   * Distribution of the number of nonlinear activation units per path (activations only, whatever
   * countOtherNonlinear says). Index k = count; ends at the largest count with nonzero probability; empty
   * arrays when no path reaches the output. Always set by pathLength/audit; optional in the type because
   * schema-1 reports written before the field existed (read back from JSON, e.g. for a before/after
   * comparison) lack it.
   */
  distribution?: PathDistribution;
}

export interface PathLengthResult {
  countOtherNonlinear: boolean;
  /** One entry per graph output, in graph order. */
  outputs: OutputPathLength[];
  /** Headline: the first output's values. */
  apl: number;
  napl: number;
  effectiveDepth: number;
  otherNonlinear: PathCounts;
  /**
   * Per activation layer (census order, Propagation.layers): expected number of the layer's nonlinear units
   * on a path to the first output, uniform over paths (apl) and normalized (napl). Summed over layers: the
   * first output's activations.apl / activations.napl. All 0 when there is no output or no path.
   */
  layerContributions: PathCounts[];
}

export function pathLength(model: Model | Graph, opts: PathLengthOptions = {}): PathLengthResult {
  const graph = 'graph' in model ? model.graph : model;
  return pathLengthOf(propagate(graph, opts), graph, opts);
}

export function pathLengthOf(p: Propagation, graph: Graph, opts: PathLengthOptions = {}): PathLengthResult {
  const withOther = opts.countOtherNonlinear ?? false;
  const outputs = graph.outputs.map((o): OutputPathLength => {
    const s = p.states.get(o.name);
    const zero = { apl: 0, napl: 0 };
    if (!s) {
      return {
        output: o.name, units: 0, dependsOnInput: false, logPaths: null, log10Paths: null, apl: 0, napl: 0, effectiveDepth: 0,
        activations: zero, otherNonlinear: zero, distribution: { apl: [], napl: [] },
      };
    }
    const r = summarize(s);
    const reach = Number.isFinite(r.logPaths) || r.logPaths === Infinity;
    const act = { apl: reach ? r.E : 0, napl: reach ? r.En : 0 };
    const other = { apl: reach ? r.O : 0, napl: reach ? r.On : 0 };
    const apl = act.apl + (withOther ? other.apl : 0);
    const napl = act.napl + (withOther ? other.napl : 0);
    return {
      output: o.name, units: r.units, dependsOnInput: reach, logPaths: reach ? r.logPaths : null,
      log10Paths: reach ? r.logPaths / Math.LN10 : null, apl, napl, effectiveDepth: napl, activations: act, otherNonlinear: other,
      distribution: reach ? { apl: trimZeros(r.P), napl: trimZeros(r.Pn) } : { apl: [], napl: [] },
    };
  });
  const head = outputs[0];
  return {
    countOtherNonlinear: withOther, outputs,
    apl: head?.apl ?? 0, napl: head?.napl ?? 0, effectiveDepth: head?.napl ?? 0,
    otherNonlinear: head?.otherNonlinear ?? { apl: 0, napl: 0 },
    layerContributions: layerContributions(p, graph, head),
  };
}

/** Per activation layer, its expected nonlinear units on a path to the first output (zeros without a path). */
function layerContributions(p: Propagation, graph: Graph, head: OutputPathLength | undefined): PathCounts[] {
  const L = p.layers.length;
  const s = head?.dependsOnInput ? p.states.get(graph.outputs[0].name) : undefined;
  if (!s) return Array.from({ length: L }, () => ({ apl: 0, napl: 0 }));
  const c = contributions(s, L);
  return Array.from({ length: L }, (_, l) => ({ apl: c.apl[l], napl: c.napl[l] }));
}

/** The probabilities as a plain array, without the trailing zeros (counts no path reaches). */
function trimZeros(v: ArrayLike<number>): number[] {
  let n = v.length;
  while (n > 1 && v[n - 1] === 0) n--;
  return Array.from({ length: n }, (_, k) => v[k]);
}
