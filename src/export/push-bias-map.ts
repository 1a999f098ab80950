// push-bias-map: a position-dependent bias map (the constant Add an exact conv merge leaves when a bias meets
// zero padding) moves forward through the next conv and joins that conv's own map, so a run of merged convs
// keeps one map Add instead of one per conv: Conv2(Conv1(x) + M1) + M2 = Conv2'(Conv1'(x)) + (conv2(M1) + M2),
// with both conv biases folded into the maps. Exact (the map is pushed with Conv2's weights and padding). Taken
// only when Conv2 has a map of its own, so an Add is removed: onnxruntime runs each map Add as its own node
// between layout reorders (~10 µs each on a small model, as much as a conv).
import type { Graph, Node } from '../import/ir.js';
import { convBehind, convMap, expandBias, mapToBias, readConv } from './layers.js';
import { emitConv } from './merge-conv.js';
import { type Candidate, type FoldPass, type PassContext, runPass, nm } from './pass.js';

export const pushBiasMapPass: FoldPass = {
  name: 'push-bias-map',
  kind: 'cleanup',
  candidates(g: Graph, ctx: PassContext): Candidate[] {
    const out: Candidate[] = [];
    const producers = g.producers();
    const consumers = g.consumers();
    for (const n2 of g.nodes) {
      if (n2.opType !== 'Conv') continue;
      const L1 = convBehind(g, n2.inputs[0], n2, ctx, producers, consumers);
      if (!L1?.add || !L1.map) continue;
      const L2 = readConv(g, n2, ctx, true, producers, consumers);
      if (typeof L2 === 'string' || !L2.add || !L2.map || !L1.outSpatial || !L2.outSpatial) continue;
      out.push({
        what: `bias map of Conv ${nm(L1.conv)} pushed through Conv ${nm(L2.conv)} into its map (one Add fewer)`,
        nodes: [nm(L1.add!), nm(L2.conv)],
        apply: () => {
          // Conv1 without bias or Add: its whole bias (map) goes forward
          const c1 = L1.conv;
          c1.inputs = c1.inputs.slice(0, 2);
          c1.outputs[0] = L1.output;
          g.nodes.splice(g.nodes.indexOf(L1.add!), 1);
          const pushed = convMap(L1.map!, L1.outSpatial!, L2).data;
          const own = L2.map ?? expandBias(L2.bias, L2.outSpatial!);
          for (let k = 0; k < pushed.length; k++) pushed[k] += own[k];
          const bias = mapToBias(pushed, L2.cout);
          const s = ctx.shapeOf(L2.output);
          const made = emitConv(g, L2.input, L2.output, {
            W: L2.W, wDims: L2.wDims, group: L2.group, strides: L2.strides, dilations: L2.dilations, pads: L2.pads, kernel: L2.kernel,
            ...(bias ? { bias } : { map: pushed, outSpatial: L2.outSpatial }),
          }, [L2.conv, L2.add].filter((x): x is Node => !!x), `${L2.conv.name || 'conv'}_pushed`);
          if (s) for (const m of made) ctx.setShape(m.outputs[0], s);
        },
      });
    }
    return out;
  },
};

export function pushBiasMap(g: Graph, ctx: Partial<PassContext> = {}): boolean {
  return runPass(pushBiasMapPass, g, ctx);
}
