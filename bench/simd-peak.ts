// How close can wasm get to native code on this CPU? On one core: the peak multiply-accumulate rate of wasm
// SIMD in this Node's V8 (a module assembled below, shaped like a GEMM micro-kernel: 12 f32x4 accumulators,
// each adding a loaded vector times a broadcast one per round; wasm has no fused multiply-add in Node 20), against the rates that tfjs's wasm kernels (XNNPACK) and onnxruntime-node
// (native, AVX2/AVX-512 where the CPU has them) reach on one thread for a 3×3 convolution and a MatMul.
// When onnxruntime's rate is k× wasm's peak, no wasm kernel can be within k× of it.
//
//   node --import tsx bench/simd-peak.ts
import { tf, useBackend, setWasmThreads } from '../src/import/tfjs/backends.js';
import { GraphBuilder, attr } from '../src/import/graph-builder.js';
import { ortSession, runOrt } from '../src/import/ort.js';
import { Tensor } from '../src/import/tensor.js';
import { median } from '../src/export/verify.js';

const CHAINS = 12;

/**
 * A wasm module exporting peak(n): n rounds of acc_k += load(16·k) · a over 12 f32x4 accumulators. Only the
 * add depends on the previous round (as in a GEMM), so the loop is bound by the multiply/add throughput.
 */
function peakModule(): WebAssembly.Module {
  const f32 = (x: number) => [0x43, ...new Uint8Array(new Float32Array([x]).buffer)];
  const get = (i: number) => [0x20, i], set = (i: number) => [0x21, i];
  const splat = [0xfd, 0x13], mul = [0xfd, 0xe6, 0x01], add = [0xfd, 0xe4, 0x01], lane0 = [0xfd, 0x1f, 0x00];
  const load = (offset: number) => [0x41, 0x00, 0xfd, 0x00, 0x04, ...leb(offset)]; // v128.load align 16
  const A = CHAINS + 1; // local 0 is n, 1..CHAINS the accumulators
  const body = [
    0x01, CHAINS + 1, 0x7b, // locals: CHAINS + 1 × v128
    ...f32(0.999), ...splat, ...set(A),
    ...Array.from({ length: CHAINS }, (_, k) => [...f32(k), ...splat, ...set(1 + k)]).flat(),
    0x02, 0x40, 0x03, 0x40, // block, loop
    ...get(0), 0x45, 0x0d, 0x01, // br_if n == 0 → out
    ...Array.from({ length: CHAINS }, (_, k) => [...get(1 + k), ...load(16 * k), ...get(A), ...mul, ...add, ...set(1 + k)]).flat(),
    ...get(0), 0x41, 0x01, 0x6b, ...set(0), // n -= 1
    0x0c, 0x00, 0x0b, 0x0b, // br loop, end loop, end block
    ...f32(0),
    ...Array.from({ length: CHAINS }, (_, k) => [...get(1 + k), ...lane0, 0x92]).flat(), // Σ lane 0: keeps the work
    0x0b,
  ];
  const section = (id: number, bytes: number[]) => [id, ...leb(bytes.length), ...bytes];
  const bytes = [
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, [0x01, 0x60, 0x01, 0x7f, 0x01, 0x7d]), // (i32) → f32
    ...section(3, [0x01, 0x00]),
    ...section(5, [0x01, 0x00, 0x01]), // one page of (zero) memory to load from
    ...section(7, [0x01, 0x04, ...Buffer.from('peak'), 0x00, 0x00]),
    ...section(10, [0x01, ...leb(body.length), ...body]),
  ];
  return new WebAssembly.Module(new Uint8Array(bytes));
}

function leb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n) byte |= 0x80;
    out.push(byte);
  } while (n);
  return out;
}

function wasmPeak(): number {
  const peak = (new WebAssembly.Instance(peakModule()).exports.peak as (n: number) => number);
  const rounds = 20_000_000;
  peak(rounds / 10);
  const times = Array.from({ length: 5 }, () => {
    const t0 = performance.now();
    peak(rounds);
    return performance.now() - t0;
  });
  return (rounds * CHAINS * 4) / Math.min(...times) / 1e6;
}

interface Case { name: string; macs: number; model: ReturnType<GraphBuilder['model']>; feed: Float32Array; shape: number[] }

function cases(): Case[] {
  const conv = new GraphBuilder();
  const x = conv.input('x', [1, 64, 56, 56]);
  conv.output(conv.op('Conv', [x, conv.normal([64, 64, 3, 3], 0.05)], { pads: attr.ints([1, 1, 1, 1]) }));
  const mm = new GraphBuilder();
  const a = mm.input('x', [1024, 1024]);
  mm.output(mm.op('MatMul', [a, mm.normal([1024, 1024], 0.03)]));
  const rnd = (n: number) => Float32Array.from({ length: n }, (_, k) => Math.sin(k));
  return [
    { name: 'Conv 3×3, 64→64, 56×56', macs: 56 * 56 * 64 * 64 * 9, model: conv.model(), feed: rnd(64 * 56 * 56), shape: [1, 64, 56, 56] },
    { name: 'MatMul 1024×1024×1024', macs: 1024 ** 3, model: mm.model(), feed: rnd(1024 * 1024), shape: [1024, 1024] },
  ];
}

async function main(): Promise<void> {
  setWasmThreads(1);
  await useBackend('wasm');
  const { compile } = await import('../src/import/tfjs/executor.js');
  const peak = wasmPeak();
  console.log('one core, multiply-accumulates per second');
  console.log(`  wasm SIMD peak in V8 (f32x4 mul + add)          ${peak.toFixed(1).padStart(6)} GMAC/s`);
  for (const c of cases()) {
    const session = await ortSession(c.model, c.name, { intraOpNumThreads: 1, interOpNumThreads: 1 });
    const exe = compile(c.model);
    const x = tf.tensor(c.feed, c.shape);
    const feed = { x: Tensor.f32('x', c.shape, c.feed) };
    const ort: number[] = [], wasm: number[] = [];
    for (let r = 0; r < 8; r++) {
      let t0 = performance.now();
      await runOrt(session, feed);
      if (r) ort.push(performance.now() - t0);
      t0 = performance.now();
      tf.tidy(() => {
        Object.values(exe.run({ x }))[0].dataSync();
      });
      if (r) wasm.push(performance.now() - t0);
    }
    x.dispose();
    exe.dispose();
    const rate = (ms: number[]) => c.macs / median(ms) / 1e6;
    const o = rate(ort), w = rate(wasm);
    console.log(`  ${c.name}`);
    console.log(`    tfjs wasm (XNNPACK), 1 thread                 ${w.toFixed(1).padStart(6)} GMAC/s   ${(100 * w / peak).toFixed(0)} % of the wasm peak`);
    console.log(`    onnxruntime-node, 1 thread                    ${o.toFixed(1).padStart(6)} GMAC/s   ${(o / peak).toFixed(2)}× the wasm peak`);
  }
}

await main();
