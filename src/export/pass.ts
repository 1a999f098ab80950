// The fold pass interface. A pass proposes candidates on the current graph; each candidate either
// carries an in-place rewrite (`apply`) or the reason it cannot be done exactly (`refused`). The pipeline
// judges candidates one at a time (objective, then onnxruntime verification) and undoes the ones that lose;
// `runPass` is the plain synchronous driver used by tests and by callers that want every rewrite.
import type { Graph, Node } from '../import/ir.js';
import { nameNodes } from '../import/ir-edit.js';

export type PassKind =
  /** never makes the model worse (identity removal, dead code, BN folding): taken unless verification fails */
  | 'cleanup'
  /** a structural merge: taken only when the objective improves */
  | 'merge';

export interface PassContext {
  /** A PRelu slope / LeakyRelu alpha / blend coefficient counts as 1 when |v − 1| ≤ eps (default 0: exactly 1). */
  eps: number;
  /** Static shape of a value when known (numbers, or names for symbolic dims). */
  shapeOf(name: string): (number | string)[] | undefined;
  /** Records the shape of a value a pass creates. */
  setShape(name: string, shape: (number | string)[]): void;
  /** The default-domain opset of the model (undefined = unknown: passes assume the most conservative reading). */
  opset?: number;
  /** The pipeline's objective (undefined outside the pipeline: passes read it as 'depth'). */
  objective?: 'depth' | 'macs' | 'latency';
  /** 'approximate' lets merge-conv merge zero-padded pairs that are exact only away from the borders (default 'exact'). */
  borders?: 'exact' | 'approximate';
}

export interface Candidate {
  /** Human description: what would be folded into what. */
  what: string;
  /** Names of the nodes involved (stable key for the pipeline). */
  nodes: string[];
  /** Performs the rewrite on the graph the candidate was found on. */
  apply?: () => void;
  /** Why the rewrite cannot be done exactly (then `apply` is absent). */
  refused?: string;
  /** Local MAC change of the rewrite when the pass knows it (per sample). */
  macsDelta?: number;
  /**
   * An exact respelling whose only worth is speed (it changes neither depth nor MACs and may add nodes, e.g.
   * PRelu → Max(x, Mul(x, a))): under the latency objective the pipeline times it against the current model
   * and takes it only when faster, whatever the pass's kind; under depth/macs it is judged like a cleanup
   * with the node-count tie-break ignored (the pass proposes it there only by a rule it has measured).
   */
  speedOnly?: boolean;
  /** The rewrite changes the function (a border-approximate conv merge): verified for its error, not held to the tolerance. */
  approximate?: boolean;
}

export interface FoldPass {
  name: string;
  kind: PassKind;
  candidates(g: Graph, ctx: PassContext): Candidate[];
}

export function passContext(opts: Partial<PassContext> & { shapes?: Map<string, (number | string)[]> } = {}): PassContext {
  const shapes = opts.shapes ?? new Map<string, (number | string)[]>();
  return {
    eps: opts.eps ?? 0,
    opset: opts.opset,
    objective: opts.objective,
    borders: opts.borders,
    shapeOf: opts.shapeOf ?? ((n) => shapes.get(n)),
    setShape: opts.setShape ?? ((n, s) => void shapes.set(n, s)),
  };
}

export const candidateKey = (pass: string, c: Pick<Candidate, 'nodes'>): string => `${pass}:${[...c.nodes].sort().join('|')}`;

/**
 * Applies every candidate of a pass until none is left (a fixed point of this pass alone); returns whether
 * the graph changed. `accept` may veto a candidate (it is then not retried).
 */
export function runPass(pass: FoldPass, g: Graph, ctx: Partial<PassContext> = {}, accept?: (c: Candidate) => boolean): boolean {
  const pc = 'shapeOf' in ctx && 'setShape' in ctx && 'eps' in ctx ? (ctx as PassContext) : passContext(ctx);
  nameNodes(g);
  const tried = new Set<string>();
  let changed = false;
  for (let guard = 0; guard < 100_000; guard++) {
    const next = pass.candidates(g, pc).find((c) => c.apply && !tried.has(candidateKey(pass.name, c)));
    if (!next) break;
    tried.add(candidateKey(pass.name, next));
    if (accept && !accept(next)) continue;
    next.apply!();
    g.sortTopologically();
    changed = true;
  }
  return changed;
}

/** Node label for candidate descriptions. */
export const nm = (n: Node): string => n.name || `${n.opType}→${n.outputs[0]}`;
