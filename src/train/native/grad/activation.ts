// Activations and pointwise functions: dY times the local derivative, written with the forward value where that
// is cheaper (Sigmoid, Tanh, Exp). Clip passes dY where min ≤ x ≤ max, as the tfjs executor's gradient does.
import { attrFloat } from '../../../import/ir.js';
import { registerGrads, type GradContext } from './registry.js';

const unary = (f: (c: GradContext, x: string, y: string) => string) => (c: GradContext) => [c.e.op('Mul', [c.dOut[0]!, f(c, c.node.inputs[0], c.node.outputs[0])], {}, 'dX')];

/** 1 where lo < v < hi (the open interval: HardSigmoid's slope region), else 0. */
const inside = ({ e }: GradContext, v: string, lo: number, hi: number) =>
  e.op('Cast', [e.op('And', [e.op('Greater', [v, e.f32(lo)]), e.op('Less', [v, e.f32(hi)])])], { to: 1 });

registerGrads(
  { op: 'Sigmoid', grad: unary(({ e }, _x, y) => e.op('Mul', [y, e.op('Sub', [e.f32(1), y])])) },
  { op: 'Tanh', grad: unary(({ e }, _x, y) => e.op('Sub', [e.f32(1), e.op('Mul', [y, y])])) },
  { op: 'Exp', grad: unary((_c, _x, y) => y) },
  { op: 'Sqrt', grad: unary(({ e }, _x, y) => e.op('Div', [e.f32(0.5), y])) },
  // d erf(x)/dx = 2/√π · exp(−x²)
  { op: 'Erf', grad: unary(({ e }, x) => e.op('Mul', [e.op('Exp', [e.op('Neg', [e.op('Mul', [x, x])])]), e.f32(2 / Math.sqrt(Math.PI))])) },
  {
    op: 'HardSigmoid',
    grad: unary((c, x) => {
      const a = attrFloat(c.node, 'alpha', 0.2), b = attrFloat(c.node, 'beta', 0.5);
      return c.e.op('Mul', [inside(c, x, -b / a, (1 - b) / a), c.e.f32(a)]);
    }),
  },
  {
    // x·HardSigmoid(x) with α = 1/6, β = ½: 0 below −3, (2x + 3)/6 inside, 1 above 3
    op: 'HardSwish',
    grad: unary((c, x) => {
      const { e } = c;
      const mid = e.op('Mul', [inside(c, x, -3, 3), e.op('Add', [e.op('Mul', [x, e.f32(1 / 3)]), e.f32(0.5)])]);
      return e.op('Add', [mid, e.op('Cast', [e.op('GreaterOrEqual', [x, e.f32(3)])], { to: 1 })]);
    }),
  },
  {
    op: 'Clip', constant: [1, 2],
    grad: ({ e, node, dOut }) => {
      const [x, lo, hi] = node.inputs;
      let keep: string | undefined;
      if (lo) keep = e.op('GreaterOrEqual', [x, lo]);
      if (hi) {
        const le = e.op('LessOrEqual', [x, hi]);
        keep = keep ? e.op('And', [keep, le]) : le;
      }
      return [keep ? e.op('Where', [keep, dOut[0]!, e.f32(0)], {}, 'dX') : dOut[0]];
    },
  },
  {
    // dx = y ⊙ (dy − Σ_axis dy ⊙ y)
    op: 'Softmax',
    grad: ({ e, node, dOut }) => {
      const y = node.outputs[0], dy = dOut[0]!;
      const axis = attrFloat(node, 'axis', -1);
      const s = e.op('ReduceSum', [e.op('Mul', [dy, y]), e.i64([axis])], { keepdims: 1 });
      return [e.op('Mul', [y, e.op('Sub', [dy, s])], {}, 'dX')];
    },
  },
  {
    // dx = dy − softmax(x) ⊙ Σ_axis dy
    op: 'LogSoftmax',
    grad: ({ e, node, dOut }) => {
      const dy = dOut[0]!;
      const axis = attrFloat(node, 'axis', -1);
      const s = e.op('ReduceSum', [dy, e.i64([axis])], { keepdims: 1 });
      return [e.op('Sub', [dy, e.op('Mul', [e.op('Exp', [node.outputs[0]]), s])], {}, 'dX')];
    },
  },
);
