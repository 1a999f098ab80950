// Block-shared slopes (`--granularity block`): activation layers joined by one linear layer and nothing else
// (act → Conv/Gemm/MatMul → act, each tensor read once) share one learnable slope. In an inverted residual
// block the ReLU6 after the expand conv and the one after the depthwise conv then end linear together or
// nonlinear together. Only both linear pay: expand∘dw∘project folds into one dense conv of fewer MACs,
// while one of them linear leaves a merge that costs more than the layers it replaces (pw∘dw), so fold
// keeps the block as it was and the accuracy spent on it buys nothing.
import type { Graph } from '../import/ir.js';
import type { ActivationLayer } from '../analyze/census.js';
import { constValue } from '../export/graph-utils.js';
import { isGraphOutput, readers } from '../import/ir-edit.js';
import type { Slope } from './linearizable.js';

const LINEAR_LAYERS = new Set(['Conv', 'Gemm', 'MatMul']);

/**
 * Groups of activation layers (by name, in forward order) that share a slope: each layer's output feeds
 * exactly one linear layer with constant weights whose output feeds exactly the next layer of the group.
 * Call on the graph before the activations are rewritten.
 */
export function slopeBlocks(g: Graph, layers: ActivationLayer[]): string[][] {
  const consumers = g.consumers();
  const byInput = new Map(layers.map((l) => [l.input, l]));
  const next = new Map<string, string>();
  const hasPrev = new Set<string>();
  for (const l of layers) {
    const r = readers(g, l.output, consumers);
    if (r.length !== 1 || isGraphOutput(g, l.output) || !LINEAR_LAYERS.has(r[0].opType)) continue;
    const lin = r[0];
    if (lin.inputs[0] !== l.output || !constValue(g, lin.inputs[1])) continue;
    const out = lin.outputs[0];
    const after = readers(g, out, consumers);
    const m = byInput.get(out);
    if (!m || after.length !== 1 || isGraphOutput(g, out)) continue;
    next.set(l.name, m.name);
    hasPrev.add(m.name);
  }
  const groups: string[][] = [];
  for (const l of layers) {
    if (hasPrev.has(l.name)) continue;
    const group = [l.name];
    for (let n = next.get(l.name); n !== undefined; n = next.get(n)) group.push(n);
    groups.push(group);
  }
  return groups;
}

/**
 * Makes each group's layers read the slope of its first layer (one value: the layers were made with one
 * slope each) and merges their Slope entries; layers whose starting slopes differ keep their own.
 * Returns the merged list, in the order of the first member.
 */
export function shareSlopes(g: Graph, slopes: Slope[], groups: string[][]): Slope[] {
  const byLayer = new Map(slopes.map((s) => [s.layer, s]));
  const merged = new Map<Slope, Slope>();
  for (const group of groups) {
    const members = group.map((n) => byLayer.get(n)).filter((s): s is Slope => s !== undefined);
    if (members.length < 2) continue;
    const start = (s: Slope) => g.initializers.get(s.name)!.numbers()[0];
    const head = members[0];
    const shared: Slope = { ...head, layer: members.map((s) => s.layer).join(' + '), channels: 0 };
    for (const s of members) {
      if (start(s) !== start(head) || s.size !== 1) continue;
      shared.channels += s.channels;
      merged.set(s, shared);
      if (s === head) continue;
      for (const n of g.nodes) n.inputs = n.inputs.map((i) => (i === s.name ? head.name : i));
      g.initializers.delete(s.name);
    }
    if (merged.get(head) === shared) shared.layer = members.filter((s) => merged.get(s) === shared).map((s) => s.layer).join(' + ');
  }
  const out: Slope[] = [];
  for (const s of slopes) {
    const m = merged.get(s) ?? s;
    if (!out.includes(m)) out.push(m);
  }
  return out;
}
