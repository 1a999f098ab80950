// Gemm, MatMul (numpy semantics) and Einsum (lowered to transpose / reshape / matMul / sum).
import { registerKernels, tf, dims, derived, type Kernel, type KernelContext, type TfTensor, kernelError } from './registry.js';
import { attrFloat, attrInt, attrString, type Node } from '../ir.js';

/**
 * matMul with transposes. On wasm the transposeA/transposeB flags of tf.matMul are 6-12× slower than an
 * explicit transpose followed by a plain product (measured: 64×512·(1000×512)ᵀ 33 ms vs 5 ms), so there the
 * operand is transposed explicitly; other backends take the flags.
 */
export function matMul(a: TfTensor, b: TfTensor, ta = false, tb = false): TfTensor {
  if ((ta || tb) && tf.getBackend() === 'wasm') {
    const t = (x: TfTensor) => tf.transpose(x, [...Array.from({ length: x.rank - 2 }, (_, i) => i), x.rank - 1, x.rank - 2]);
    return tf.matMul(ta ? t(a) : a, tb ? t(b) : b);
  }
  return tf.matMul(a, b, ta, tb);
}

function gemm([a, b, c]: TfTensor[], node: Node, ctx: KernelContext): TfTensor {
  const alpha = attrFloat(node, 'alpha', 1), beta = attrFloat(node, 'beta', 1);
  const ta = attrInt(node, 'transA', 0) === 1, tb = attrInt(node, 'transB', 0) === 1;
  if (a.rank !== 2 || b.rank !== 2) throw kernelError(node, `Gemm needs 2-D operands, got [${a.shape}] and [${b.shape}]`);
  // a transposed weight (transB = 1, the usual export) is transposed once per weight value on wasm
  const bt = tb && tf.getBackend() === 'wasm' ? derived(ctx, b, 'transposed', () => tf.transpose(b)) : undefined;
  let y = bt ? matMul(a, bt, ta, false) : matMul(a, b, ta, tb);
  if (alpha !== 1) y = tf.mul(y, alpha);
  if (c && beta !== 0) y = tf.add(y, beta === 1 ? c : tf.mul(c, beta));
  return y;
}

/** numpy matmul: 1-D operands are promoted and the added axis removed; batch axes broadcast. */
function matmulNd(a: TfTensor, b: TfTensor, node: Node): TfTensor {
  if (a.dtype !== b.dtype) throw kernelError(node, `operands have types ${a.dtype} and ${b.dtype}`);
  const a1 = a.rank === 1, b1 = b.rank === 1;
  let x = a1 ? tf.reshape(a, [1, a.shape[0]]) : a;
  let y = b1 ? tf.reshape(b, [b.shape[0], 1]) : b;
  if (x.rank === 2 && y.rank > 2) x = tf.reshape(x, [...Array(y.rank - 2).fill(1), ...x.shape]);
  if (y.rank === 2 && x.rank > 2 && x.rank !== 3) y = tf.reshape(y, [...Array(x.rank - 2).fill(1), ...y.shape]);
  let out: TfTensor;
  if (x.rank > 2 && y.rank === 2) {
    // [.., M, K]·[K, N]: one 2-D product over the flattened batch
    const lead = x.shape.slice(0, -1);
    out = tf.reshape(tf.matMul(tf.reshape(x, [-1, x.shape[x.rank - 1]]), y), [...lead, dims(y)[1]]);
  } else {
    const r = Math.max(x.rank, y.rank);
    if (x.rank < r) x = tf.reshape(x, [...Array(r - x.rank).fill(1), ...x.shape]);
    if (y.rank < r) y = tf.reshape(y, [...Array(r - y.rank).fill(1), ...y.shape]);
    // broadcast batch axes explicitly: BatchMatMul's gradient does not reduce broadcast axes
    const batch = x.shape.slice(0, -2).map((d, i) => Math.max(d, y.shape[i]));
    const full = (t: TfTensor) => {
      const want = [...batch, ...t.shape.slice(-2)];
      return t.shape.every((d, i) => d === want[i]) ? t : tf.broadcastTo(t, want);
    };
    out = tf.matMul(full(x), full(y));
  }
  if (a1 && b1) return tf.reshape(out, out.shape.slice(0, -2));
  if (a1) return tf.reshape(out, [...out.shape.slice(0, -2), out.shape[out.rank - 1]]);
  if (b1) return tf.reshape(out, out.shape.slice(0, -1));
  return out;
}

// ---- Einsum ----
interface Term { labels: string[] }

function parseEinsum(eq: string, ranks: number[], node: Node): { inputs: Term[]; output: string[] } {
  const clean = eq.replace(/\s+/g, '');
  const [lhs, rhsRaw] = clean.split('->');
  const parts = lhs.split(',');
  if (parts.length !== ranks.length) throw kernelError(node, `equation '${eq}' has ${parts.length} operands, the node ${ranks.length}`);
  const ellOf = (p: string, rank: number) => (p.includes('...') ? rank - p.replace('...', '').length : 0);
  const ellRank = Math.max(0, ...parts.map((p, i) => ellOf(p, ranks[i])));
  const expand = (p: string, rank: number): string[] => {
    const letters = p.replace('...', '').split('');
    if (!p.includes('...')) {
      if (letters.length !== rank) throw kernelError(node, `equation term '${p}' does not match an operand of rank ${rank}`);
      return letters;
    }
    const n = ellOf(p, rank);
    const [pre, post] = p.split('...');
    // ellipsis axes get labels '#0', '#1', ... aligned from the right (numpy broadcasting)
    return [...pre.split('').filter(Boolean), ...Array.from({ length: n }, (_, i) => `#${ellRank - n + i}`), ...post.split('').filter(Boolean)];
  };
  const inputs = parts.map((p, i) => ({ labels: expand(p, ranks[i]) }));
  let output: string[];
  if (rhsRaw !== undefined) {
    const ell = Array.from({ length: ellRank }, (_, i) => `#${i}`);
    output = rhsRaw.includes('...')
      ? [...rhsRaw.split('...')[0].split('').filter(Boolean), ...ell, ...rhsRaw.split('...')[1].split('').filter(Boolean)]
      : rhsRaw.split('').filter(Boolean);
  } else {
    const counts = new Map<string, number>();
    for (const t of inputs) for (const l of t.labels) counts.set(l, (counts.get(l) ?? 0) + 1);
    const ell = Array.from({ length: ellRank }, (_, i) => `#${i}`);
    output = [...ell, ...[...counts].filter(([l, c]) => c === 1 && !l.startsWith('#')).map(([l]) => l).sort()];
  }
  return { inputs, output };
}

/** Removes repeated labels of one operand by taking the diagonal. */
function diagonal(x: TfTensor, labels: string[]): { t: TfTensor; labels: string[] } {
  for (let i = 0; i < labels.length; i++) {
    const j = labels.indexOf(labels[i], i + 1);
    if (j < 0) continue;
    const n = x.shape[i];
    const eyeShape = x.shape.map((_, k) => (k === i || k === j ? n : 1));
    const eye = tf.reshape(tf.eye(n, n, undefined, x.dtype === 'int32' ? 'int32' : 'float32'), eyeShape);
    const y = tf.sum(tf.mul(x, eye), j);
    return diagonal(y, labels.filter((_, k) => k !== j));
  }
  return { t: x, labels };
}

function contractPair(a: { t: TfTensor; labels: string[] }, b: { t: TfTensor; labels: string[] }, keep: Set<string>): { t: TfTensor; labels: string[] } {
  const sizeOf = new Map<string, number>();
  a.labels.forEach((l, i) => sizeOf.set(l, a.t.shape[i]));
  b.labels.forEach((l, i) => sizeOf.set(l, Math.max(sizeOf.get(l) ?? 1, b.t.shape[i])));
  const inA = new Set(a.labels), inB = new Set(b.labels);
  const batch = a.labels.filter((l) => inB.has(l) && keep.has(l));
  const contract = a.labels.filter((l) => inB.has(l) && !keep.has(l));
  const aFree = a.labels.filter((l) => !inB.has(l));
  const bFree = b.labels.filter((l) => !inA.has(l));
  const perm = (t: { t: TfTensor; labels: string[] }, order: string[]) => {
    const p = order.map((l) => t.labels.indexOf(l));
    return p.every((v, i) => v === i) ? t.t : tf.transpose(t.t, p);
  };
  const prod = (ls: string[]) => ls.reduce((n, l) => n * sizeOf.get(l)!, 1);
  // broadcast batch axes of size 1 (ellipsis broadcasting)
  const bcast = (t: TfTensor, order: string[]) => {
    const want = order.map((l) => sizeOf.get(l)!);
    return t.shape.every((d, i) => d === want[i]) ? t : tf.broadcastTo(t, want);
  };
  const A = tf.reshape(bcast(perm(a, [...batch, ...aFree, ...contract]), [...batch, ...aFree, ...contract]), [prod(batch), prod(aFree), prod(contract)]);
  const B = tf.reshape(bcast(perm(b, [...batch, ...contract, ...bFree]), [...batch, ...contract, ...bFree]), [prod(batch), prod(contract), prod(bFree)]);
  const out = tf.reshape(tf.matMul(A, B), [...batch, ...aFree, ...bFree].map((l) => sizeOf.get(l)!));
  return { t: out, labels: [...batch, ...aFree, ...bFree] };
}

function einsum(inputs: TfTensor[], node: Node): TfTensor {
  const eq = attrString(node, 'equation', '');
  const { inputs: terms, output } = parseEinsum(eq, inputs.map((t) => t.rank), node);
  const ops = inputs.map((t, i) => diagonal(t, terms[i].labels));
  // sum out labels that appear in only one operand and not in the output
  const reduceSolo = (k: number) => {
    const others = new Set([...output, ...ops.filter((_, j) => j !== k).flatMap((o) => o.labels)]);
    const axes = ops[k].labels.map((l, i) => (others.has(l) ? -1 : i)).filter((i) => i >= 0);
    if (axes.length) ops[k] = { t: tf.sum(ops[k].t, axes), labels: ops[k].labels.filter((_, i) => !axes.includes(i)) };
  };
  ops.forEach((_, k) => reduceSolo(k));
  let acc = ops[0];
  for (let k = 1; k < ops.length; k++) {
    const keep = new Set([...output, ...ops.slice(k + 1).flatMap((o) => o.labels)]);
    acc = contractPair(acc, ops[k], keep);
  }
  const rest = acc.labels.map((l, i) => (output.includes(l) ? -1 : i)).filter((i) => i >= 0);
  if (rest.length) acc = { t: tf.sum(acc.t, rest), labels: acc.labels.filter((_, i) => !rest.includes(i)) };
  const p = output.map((l) => acc.labels.indexOf(l));
  if (p.some((v) => v < 0)) throw kernelError(node, `equation '${eq}': output label not found in the inputs`);
  return p.every((v, i) => v === i) ? acc.t : tf.transpose(acc.t, p);
}

export const matmulKernels: Kernel[] = [
  { op: 'Gemm', since: 1, weights: [0, 1, 2], run: (inputs, node, ctx) => [gemm(inputs, node, ctx)] },
  { op: 'MatMul', since: 1, weights: [0, 1], run: ([a, b], node) => [matmulNd(a, b, node)] },
  { op: 'Einsum', since: 12, weights: [0, 1, 2, 3], run: (inputs, node) => [einsum(inputs, node)] },
];

registerKernels(...matmulKernels);
