// The fold pipeline's objective: what a rewrite must improve to be taken. Merges in chains of linear layers
// are decided by the chain planner (merge-plan.ts) over measured or modelled layer costs; any other merge
// must improve the lexicographic measure (depth first for 'depth', MACs first otherwise); a speed-only
// respelling under 'latency' is timed against the current model.
import type { Graph } from '../import/ir.js';
import type { Candidate, FoldPass, PassContext } from './pass.js';
import { candidateKey } from './pass.js';
import type { ShapeMap } from './shapes.js';
import { graphMacs, layerDepth } from './metrics.js';
import { findChains, geometriesOf, planMerges, type MergePlan } from './merge-plan.js';
import { layerCoster } from './layer-cost.js';
import { pairedLatency } from './verify.js';
import type { Tensor } from '../import/tensor.js';
import type { FoldEvent, Objective } from './pipeline.js';

/** A chain's cost as it is and as the planner would merge it. */
export interface PlannedCost { costNow: number; costPlanned: number }

export interface Judgement { fine: boolean; before: number[]; after: number[] }

const lexLess = (a: number[], b: number[]): boolean => {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] < b[i];
  return false;
};

const OBJ_LABELS: Record<Objective, string> = { depth: 'depth, critical layers, MACs, nodes', macs: 'MACs, depth, critical layers, nodes', latency: 'MACs, depth, critical layers, nodes' };
const fmtCost = (v: number, o: Objective) => (o === 'latency' ? `${v.toFixed(3)} ms` : o === 'macs' ? `${Math.round(v)} MACs` : `${Math.round(v)} layers`);
const fmtObj = (v: number[], o: Objective) => (v.length === 1 ? fmtCost(v[0], o) : `[${v.join(', ')}] (${OBJ_LABELS[o]})`);

export class FoldObjective {
  /** the measure of the graph as it is (after the last taken rewrite) */
  current: number[];
  private readonly coster;
  private readonly timingRuns: number;

  constructor(
    readonly objective: Objective,
    private readonly g: Graph,
    private readonly shapes: ShapeMap,
    private readonly ctx: PassContext,
    private readonly opts: { cost?: 'measured' | 'model'; latencyRuns: number; latencyFeeds: Record<string, Tensor> },
  ) {
    this.coster = layerCoster(objective, { measure: opts.cost !== 'model' });
    this.timingRuns = Math.max(5, Math.min(opts.latencyRuns || 10, 15));
    this.current = this.measure();
  }

  /** depth/MACs measure of the current graph; ties broken by node count (absorbing a residual removes an Add and changes nothing else) */
  measure(): number[] {
    const d = layerDepth(this.g);
    const macs = graphMacs(this.g, this.shapes);
    return this.objective === 'depth' ? [d.depth, d.critical, macs, this.g.nodes.length] : [macs, d.depth, d.critical, this.g.nodes.length];
  }

  /** Whether judging `c` needs the model's bytes from before it is applied (a timed respelling). */
  needsTiming(c: Candidate): boolean {
    return this.objective === 'latency' && !!c.speedOnly;
  }

  /** The cheapest partition of every chain of linear layers in the current graph (costs measured first). */
  async plan(): Promise<MergePlan> {
    const chains = findChains(this.g, this.ctx);
    await this.coster.prepare(geometriesOf(chains));
    // measured latencies within 3% are a tie (taken for depth): kernel timings vary that much run to run
    return planMerges(chains, (geom) => this.coster.cost(geom), this.objective === 'latency' && this.opts.cost !== 'model' ? 0.03 : 0);
  }

  /**
   * Judges a candidate already applied to the graph. `planned`: a merge the chain planner chose, already
   * judged on the chain's cost. `beforeBytes`/`afterBytes`: a timed respelling, the current model and the
   * candidate timed in alternation (2 % margin against noise).
   */
  async judge(pass: FoldPass, c: Candidate, planned?: PlannedCost, timed?: { beforeBytes: Uint8Array; afterBytes: Uint8Array }): Promise<Judgement> {
    if (planned) return { fine: true, before: [planned.costNow], after: [planned.costPlanned] };
    if (timed) {
      const [tCur, tCand] = await pairedLatency(timed.beforeBytes, timed.afterBytes, this.opts.latencyFeeds, this.timingRuns);
      return { fine: tCand < tCur * 0.98, before: [tCur], after: [tCand] };
    }
    const after = this.measure(), before = this.current;
    // an exact respelling that may add nodes: only depth/MACs must not get worse (the last entry is the node count)
    const fine = pass.kind === 'merge' ? lexLess(after, before)
      : c.speedOnly ? !lexLess(before.slice(0, -1), after.slice(0, -1))
        : !lexLess(before, after) || this.objective === 'latency';
    return { fine, before, after };
  }

  /** Why a judged candidate was not taken. */
  refusal(j: Judgement): string {
    return `objective: ${this.objective} ${fmtObj(j.before, this.objective)} → ${fmtObj(j.after, this.objective)} does not improve`;
  }

  /** Pairs the planner keeps apart, as rejections naming the chain's costs. */
  declined(passName: string, cands: Candidate[], plan: MergePlan): [string, FoldEvent][] {
    const out: [string, FoldEvent][] = [];
    for (const ch of plan.chains) {
      for (const [a, b] of ch.apart) {
        const c = cands.find((k) => k.apply && k.nodes[0] === a && k.nodes[1] === b);
        if (!c) continue;
        const parts = ch.segments.map(([i, j]) => (i === j ? ch.nodes[i] : `${ch.nodes[i]}…${ch.nodes[j]}`)).join(' | ');
        out.push([candidateKey(passName, c), {
          pass: passName, what: c.what, nodes: c.nodes, objective: { before: [ch.costNow], after: [ch.costPlanned] },
          reason: `objective: ${this.objective}: the cheapest partition of the chain ${ch.nodes.join(' → ')} is ${parts} (${fmtCost(ch.costPlanned, this.objective)}, as it is ${fmtCost(ch.costNow, this.objective)}); merging these two is not part of it`,
        }]);
      }
    }
    return out;
  }
}
