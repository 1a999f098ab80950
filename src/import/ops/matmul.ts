// Dense products: Gemm (transA/transB), MatMul (numpy semantics: batch broadcasting, 1-D operands),
// MatMulInteger, Einsum (general equations, with ellipsis).
import { attrInt, attrString, type Dim, type Node, type Shape } from '../ir.js';
import { product } from '../shape-math.js';
import { bad, broadcastShapes, dtypeOf, fmtShape, fresh, shapeOf, unify } from './common.js';
import { registerOps, type DimsOf, type OpContext, type OpSpec, type OutputType } from './registry.js';

function gemmInfer(ctx: OpContext): OutputType[] {
  const dtype = dtypeOf(ctx, 0) ?? dtypeOf(ctx, 1);
  const a = shapeOf(ctx, 0), b = shapeOf(ctx, 1);
  for (const [s, name] of [[a, 'A'], [b, 'B']] as const)
    if (s && s.length !== 2) bad(ctx, `Gemm input ${name} must be 2-D, got ${fmtShape(s)}`);
  const ta = attrInt(ctx.node, 'transA', 0), tb = attrInt(ctx.node, 'transB', 0);
  const [m, ka] = a ? (ta ? [a[1], a[0]] : [a[0], a[1]]) : [fresh(ctx), undefined];
  const [kb, n] = b ? (tb ? [b[1], b[0]] : [b[0], b[1]]) : [undefined, fresh(ctx)];
  if (ka !== undefined && kb !== undefined) unify(ctx, ka, kb, `inner dimensions of A ${fmtShape(a!)} and B ${fmtShape(b!)} differ`);
  return [{ dtype, shape: [m, n] }];
}

function matmulShape(ctx: OpContext, a: Shape | undefined, b: Shape | undefined): Shape | undefined {
  if (!a || !b) return undefined;
  if (!a.length || !b.length) bad(ctx, 'MatMul operands must have rank ≥ 1');
  const a2 = a.length === 1 ? [1, a[0]] : a, b2 = b.length === 1 ? [b[0], 1] : b;
  unify(ctx, a2[a2.length - 1], b2[b2.length - 2], `inner dimensions of ${fmtShape(a)} and ${fmtShape(b)} differ`);
  const batch = broadcastShapes(ctx, [a2.slice(0, -2), b2.slice(0, -2)])!;
  return [...batch, ...(a.length > 1 ? [a2[a2.length - 2]] : []), ...(b.length > 1 ? [b2[b2.length - 1]] : [])];
}

/** Einsum: letters bind dims across operands; '...' broadcasts; implicit output = letters used once, sorted. */
function einsumInfer(ctx: OpContext): OutputType[] {
  const dtype = dtypeOf(ctx, 0);
  const eq = attrString(ctx.node, 'equation', '').replace(/\s/g, '');
  const [lhs, rhs] = eq.split('->');
  const terms = lhs.split(',');
  if (terms.length !== ctx.node.inputs.length) bad(ctx, `equation '${eq}' has ${terms.length} operands, the node ${ctx.node.inputs.length}`);
  const shapes = terms.map((_, i) => shapeOf(ctx, i));
  if (shapes.some((s) => !s)) return [{ dtype }];
  const dims = new Map<string, Dim>();
  const count = new Map<string, number>();
  const ellipses: Shape[] = [];
  terms.forEach((term, i) => {
    const s = shapes[i]!;
    const [pre, post = ''] = term.split('...');
    const hasEllipsis = term.includes('...');
    const nEll = s.length - pre.length - post.length;
    if (nEll < 0 || (!hasEllipsis && nEll !== 0)) bad(ctx, `operand ${i} ${fmtShape(s)} does not match '${term}' in '${eq}'`);
    if (hasEllipsis) ellipses.push(s.slice(pre.length, pre.length + nEll));
    [...pre, ...post].forEach((c, k) => {
      const d = k < pre.length ? s[k] : s[nEll + k];
      const prev = dims.get(c);
      dims.set(c, prev === undefined ? d : prev === 1 ? d : d === 1 ? prev : unify(ctx, prev, d, `'${c}' in '${eq}' binds different sizes`));
      count.set(c, (count.get(c) ?? 0) + 1);
    });
  });
  const ell = broadcastShapes(ctx, ellipses) ?? [];
  const out = rhs ?? (ellipses.length ? '...' : '') + [...count].filter(([, n]) => n === 1).map(([c]) => c).sort().join('');
  const [pre, post = ''] = out.split('...');
  const letter = (c: string) => dims.get(c) ?? bad(ctx, `output letter '${c}' of '${eq}' appears in no operand`);
  return [{ dtype, shape: [...[...pre].map(letter), ...(out.includes('...') ? ell : []), ...[...post].map(letter)] }];
}

function gemmMacs(n: Node, dims: DimsOf): number | undefined {
  const a = dims(n.inputs[0]);
  const b = dims(n.inputs[1]);
  if (!a || !b) return undefined;
  const [M, K] = attrInt(n, 'transA', 0) ? [a[1], a[0]] : [a[0], a[1]];
  const N = attrInt(n, 'transB', 0) ? b[0] : b[1];
  return M * K * N;
}

/** Output elements × the contracted length (FusedMatMul's transA moves it); `bi`: position of B. */
const matmulMacs = (bi: number) => (n: Node, dims: DimsOf): number | undefined => {
  const a = dims(n.inputs[0]);
  const b = dims(n.inputs[bi]);
  const y = dims(n.outputs[0]);
  if (!a || !b) return undefined;
  const K = attrInt(n, 'transA', 0) ? a[a.length - 2] ?? a[0] : a[a.length - 1];
  if (y) return product(y) * K;
  const a2 = a.length === 1 ? [1, a[0]] : a;
  const b2 = b.length === 1 ? [b[0], 1] : b;
  const batch = Math.max(product(a2.slice(0, -2)), product(b2.slice(0, -2)));
  return batch * a2[a2.length - 2] * K * b2[b2.length - 1];
};

/** One multiply-accumulate per point of the joint index space (pairwise products for > 2 operands). */
function einsumMacs(n: Node, dims: DimsOf): number | undefined {
  if (n.inputs.length < 2) return 0;
  const eq = attrString(n, 'equation', '').replace(/\s+/g, '');
  const terms = eq.split('->')[0].split(',');
  const size = new Map<string, number>();
  for (let k = 0; k < terms.length; k++) {
    const d = dims(n.inputs[k]);
    if (!d) return undefined;
    const t = terms[k];
    const [pre, post] = t.includes('...') ? t.split('...') : [t, ''];
    const ell = d.length - pre.length - post.length;
    [...pre].forEach((l, i) => size.set(l, d[i]));
    for (let e = 0; e < ell; e++) size.set(`.${e}`, Math.max(size.get(`.${e}`) ?? 1, d[pre.length + e]));
    [...post].forEach((l, i) => size.set(l, d[pre.length + ell + i]));
  }
  return product([...size.values()]) * (terms.length - 1);
}

const dense = { path: { rule: 'matmul', weight: 1 }, channels: 'last', macs: matmulMacs(1) } as const;

const specs: OpSpec[] = [
  { op: 'Gemm', since: 1, infer: gemmInfer, path: { rule: 'gemm' }, channels: 'last', macs: gemmMacs },
  { op: 'MatMul', since: 1, infer: (ctx) => [{ dtype: dtypeOf(ctx, 0), shape: matmulShape(ctx, shapeOf(ctx, 0), shapeOf(ctx, 1)) }], ...dense },
  { op: 'MatMulInteger', since: 10, infer: (ctx) => [{ dtype: 'int32', shape: matmulShape(ctx, shapeOf(ctx, 0), shapeOf(ctx, 1)) }], ...dense },
  { op: 'Einsum', since: 12, infer: einsumInfer, path: { rule: 'einsum' }, channels: 'last', macs: einsumMacs },
  // no shape rule: the audit's facts only
  { op: 'QLinearMatMul', since: 10, path: { rule: 'matmul', weight: 3 }, macs: matmulMacs(3) },
  { op: 'FusedMatMul', domain: 'com.microsoft', since: 1, ...dense },
];
registerOps(...specs);
