// Pooling: MaxPool routes dY to the argmax through the node's Indices output (added to the forward node when the
// model does not read it): windows tiling the input by a mask, others scattered into zeros (ScatterElements,
// 'add' when windows overlap); average pools
// spread dY evenly.
import { product } from '../../../import/shape-math.js';
import { LinfoldError } from '../../../errors.js';
import { attrInts, attrInt, attrString, nodeLabel } from '../../../import/ir.js';
import { registerGrads } from './registry.js';

registerGrads(
  {
    op: 'MaxPool',
    grad: ({ e, node, dOut }) => {
      if (!node.outputs[1]) node.outputs[1] = e.fresh(`${node.outputs[0]}_indices`);
      const k = attrInts(node, 'kernel_shape') ?? [];
      const s = attrInts(node, 'strides') ?? k.map(() => 1);
      const d = attrInts(node, 'dilations') ?? k.map(() => 1);
      const pads = attrInts(node, 'pads') ?? [];
      const x = node.inputs[0], dy = dOut[0]!;
      const xs = e.shape(x, node), ys = e.shape(node.outputs[0], node);
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
      const tiled = k.length === 2 && k.every((v, i) => v === s[i] && d[i] === 1) && pads.every((p) => p === 0) && attrInt(node, 'ceil_mode', 0) === 0
        && ['NOTSET', 'VALID'].includes(attrString(node, 'auto_pad', 'NOTSET'))
        && [...xs.slice(2), ...ys.slice(2)].every((v) => typeof v === 'number');
      if (tiled) {
        // windows tiling the input: the argmax's offset from its window's corner, idx − ((n·C + c)·H + y·kh)·W − x·kw
        // = i·W + j, names its tap; repeated over the window (nearest Resize, like dY) it is compared with every
        // position's own offset from its corner, and one Where writes dX (no scatter, no per-tap maps to interleave)
        const [h, w] = ys.slice(2) as number[], [H, W] = xs.slice(2) as number[], [kh, kw] = k;
        const C = xs[1];
        if (typeof C !== 'number') e.staticShape(x, node);
        const corner = Array.from({ length: (C as number) * h * w }, (_, q) => {
          const c = Math.floor(q / (h * w)), y = Math.floor(q / w) % h, xx = q % w;
          return (c * H + y * kh) * W + xx * kw;
        });
        const n = e.op('Range', [e.i64([0], []), e.op('Gather', [e.op('Shape', [idx]), e.i64([0], [])], { axis: 0 }), e.i64([1], [])]);
        const nBase = e.op('Reshape', [e.op('Mul', [n, e.i64([(C as number) * H * W], [])]), e.i64([-1, 1, 1, 1])]);
        const off = e.op('Sub', [e.op('Sub', [idx, e.i64(corner, [C as number, h, w])]), nBase]);
        const up = (v: string) => e.op('Resize', [v, '', e.f32([1, 1, kh, kw], [4])], { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' });
        const taps = e.f32(Array.from({ length: kh * h * kw * w }, (_, q) => (Math.floor(q / (w * kw)) % kh) * W + ((q % (w * kw)) % kw)), [h * kh, w * kw]);
        let dx = e.op('Where', [e.op('Equal', [up(e.op('Cast', [off], { to: 1 })), taps]), up(dy), e.f32(0)], {}, 'dX');
        if (h * kh !== H || w * kw !== W) dx = e.op('Pad', [dx, e.i64([0, 0, 0, 0, 0, 0, H - h * kh, W - w * kw])]);
        return [dx];
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
