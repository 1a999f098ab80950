// Pooling: MaxPool routes dY to each window's first argmax. Windows tiling the input find it by comparing X with
// the pooled output (no Indices output: onnxruntime's MaxPool with indices is several times slower than without);
// other windows through the node's Indices output (added to the forward node when the model does not read it),
// dY scattered into zeros (ScatterElements, 'add' when windows overlap). Average pools spread dY evenly.
import { product } from '../../../import/shape-math.js';
import { LinfoldError } from '../../../errors.js';
import { attrInts, attrInt, attrString, nodeLabel } from '../../../import/ir.js';
import { registerGrads } from './registry.js';
import type { Emitter } from '../emit.js';

registerGrads(
  {
    op: 'MaxPool',
    grad: ({ e, node, dOut }) => {
      const k = attrInts(node, 'kernel_shape') ?? [];
      const s = attrInts(node, 'strides') ?? k.map(() => 1);
      const d = attrInts(node, 'dilations') ?? k.map(() => 1);
      const pads = attrInts(node, 'pads') ?? [];
      const x = node.inputs[0], dy = dOut[0]!;
      const xs = e.shape(x, node), ys = e.shape(node.outputs[0], node);
      const tiled = k.length === 2 && k.every((v, i) => v === s[i] && d[i] === 1) && pads.every((p) => p === 0) && attrInt(node, 'ceil_mode', 0) === 0
        && ['NOTSET', 'VALID'].includes(attrString(node, 'auto_pad', 'NOTSET'))
        && [...xs.slice(2), ...ys.slice(2)].every((v) => typeof v === 'number');
      if (tiled) return [tiledMaxPoolGrad(e, x, node.outputs[0], dy, k, xs.slice(2) as number[], ys.slice(2) as number[])];
      if (!node.outputs[1]) node.outputs[1] = e.fresh(`${node.outputs[0]}_indices`);
      let idx = node.outputs[1];
      if (attrInt(node, 'storage_order', 0) === 1 && k.length > 1) {
        // column-major indices: within an image plane q = x·H + y; row-major is y·W + x (1-D: the same)
        if (k.length > 2) throw new LinfoldError(`native backend: ${nodeLabel(node)}: storage_order 1 is supported for 2-D pooling only`);
        const [H, W] = xs.slice(2);
        if (typeof H !== 'number' || typeof W !== 'number') throw new LinfoldError(`native backend: ${nodeLabel(node)}: storage_order 1 needs static spatial dims, input is [${xs}]`);
        const plane = e.i64([H * W], []);
        const q = e.op('Mod', [idx, plane]);
        const rowMajor = e.op('Add', [e.op('Mul', [e.op('Mod', [q, e.i64([H], [])]), e.i64([W], [])]), e.op('Div', [q, e.i64([H], [])])]);
        idx = e.op('Add', [e.op('Sub', [idx, q]), rowMajor]);
      }
      const overlap = k.some((v, i) => (v - 1) * d[i] + 1 > s[i]);
      const flat = e.i64([-1]);
      const zeros = e.op('ConstantOfShape', [e.op('Reshape', [e.op('Size', [x]), flat])]);
      const scattered = e.op('ScatterElements', [zeros, e.op('Reshape', [idx, flat]), e.op('Reshape', [dy, flat])], overlap ? { axis: 0, reduction: 'add' } : { axis: 0 });
      return [e.op('Reshape', [scattered, e.op('Shape', [x])], {}, 'dX')];
    },
  },
  {
    op: 'GlobalAveragePool',
    grad: ({ e, node, dOut }) => {
      const x = node.inputs[0];
      const spatial = e.shape(x, node).slice(2);
      if (spatial.some((d) => typeof d !== 'number')) e.staticShape(x, node);
      const scale = e.f32(1 / product(spatial as number[]));
      return [e.op('Expand', [e.op('Mul', [dOut[0]!, scale]), e.op('Shape', [x])], {}, 'dX')];
    },
  },
);

/**
 * dX of a MaxPool whose kh×kw windows tile X (strides = kernel, no pads): a position receives its window's dY when
 * it holds the window's maximum and no earlier position (row-major, the order of MaxPool's indices) does. Positions
 * equal to the maximum get a priority falling with their tap index (kh·kw for the corner … 1); pooling those picks
 * the first one's. Rows and columns past the last whole window get zeros.
 */
function tiledMaxPoolGrad(e: Emitter, x: string, y: string, dy: string, k: number[], X: number[], Y: number[]): string {
  const [kh, kw] = k, [H, W] = X, covered = [Y[0] * kh, Y[1] * kw];
  const whole = covered[0] === H && covered[1] === W;
  const up = (v: string) => e.op('Resize', [v, '', e.f32([1, 1, kh, kw], [4])], { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' });
  const pool = (v: string) => e.op('MaxPool', [v], { kernel_shape: k, strides: k });
  const inWindows = whole ? x : e.op('Slice', [x, e.i64([0, 0]), e.i64(covered), e.i64([2, 3])]);
  const priority = e.f32(Array.from({ length: covered[0] * covered[1] }, (_, q) => kh * kw - ((Math.floor(q / covered[1]) % kh) * kw + ((q % covered[1]) % kw))), covered);
  const isMax = e.op('Cast', [e.op('Equal', [inWindows, up(y)])], { to: 1 });
  const ranked = e.op('Mul', [isMax, priority]);
  const first = e.op('Cast', [e.op('Equal', [ranked, up(pool(ranked))])], { to: 1 });
  const dx = e.op('Mul', [first, up(dy)], {}, 'dX');
  return whole ? dx : e.op('Pad', [dx, e.i64([0, 0, 0, 0, 0, 0, H - covered[0], W - covered[1]])], {}, 'dX');
}
