// Elementwise ops with numpy broadcasting (gradients summed back over broadcast axes) and the ReLU family.
import { registerGrads, type GradContext } from './registry.js';

const binary = (f: (c: GradContext, k: number) => string) => (c: GradContext) => {
  const { e, node } = c;
  return [0, 1].map((k) => (c.need[k] ? e.unbroadcast(f(c, k), node.inputs[k], node.outputs[0], node) : undefined));
};

registerGrads(
  { op: 'Add', elementwise: true, weights: [0, 1], grad: binary(({ dOut }) => dOut[0]!) },
  { op: 'Sub', elementwise: true, grad: binary(({ e, dOut }, k) => (k === 0 ? dOut[0]! : e.op('Neg', [dOut[0]!]))) },
  { op: 'Mul', elementwise: true, weights: [0, 1], grad: binary(({ e, node, dOut }, k) => e.op('Mul', [dOut[0]!, node.inputs[1 - k]])) },
  {
    op: 'Div', elementwise: true,
    grad: binary(({ e, node, dOut }, k) => {
      const da = e.op('Div', [dOut[0]!, node.inputs[1]]);
      return k === 0 ? da : e.op('Neg', [e.op('Mul', [da, node.outputs[0]])]);
    }),
  },
  { op: 'Neg', grad: ({ e, dOut }) => [e.op('Neg', [dOut[0]!])] },
  { op: 'Identity', grad: ({ dOut }) => [dOut[0]] },
  {
    // y > 0 exactly where x > 0: reading the output leaves the input to the forward pass alone (onnxruntime then
    // fuses a Conv → Relu into one FusedConv). dY times a 0/1 float mask: onnxruntime's Mul is faster than its Where.
    op: 'Relu',
    grad: ({ e, node, dOut }) => [e.op('Mul', [dOut[0]!, e.op('Cast', [e.op('Greater', [node.outputs[0], e.f32(0)])], { to: 1 })])],
  },
  {
    // y = x (x > 0), a·x otherwise; dx = dy·(a + (1 − a)·[x > 0]); da = Σ dy·min(x, 0) over the broadcast axes.
    // Computed as Relu(x) + a·min(x, 0) (exact: one term is 0): onnxruntime's PRelu kernel takes ~5× as long.
    op: 'PRelu', weights: [1],
    forward: (e, node) => {
      const [x, a] = node.inputs;
      return [e.op('Add', [e.op('Relu', [x]), e.op('Mul', [a, e.op('Min', [x, e.f32(0)])])])];
    },
    grad: ({ e, node, dOut, need }) => {
      const [x, a] = node.inputs;
      const dy = dOut[0]!, zero = e.f32(0);
      const res: (string | undefined)[] = [];
      if (need[0]) {
        const positive = e.op('Cast', [e.op('Greater', [x, zero])], { to: 1 });
        res[0] = e.op('Mul', [dy, e.op('Add', [e.op('Mul', [positive, e.op('Sub', [e.f32(1), a])]), a])], {}, 'dX');
      }
      if (need[1]) res[1] = e.unbroadcast(e.op('Mul', [dy, e.op('Min', [x, zero])]), a, node.outputs[0], node);
      return res;
    },
  },
);
