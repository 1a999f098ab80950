// audit on transformers (src/analyze/transformer.ts): GELU spellings, Softmax/LayerNorm counted apart, the FFN
// table, per-token path length — hand-computed on the torch-exported encoders of fixtures/make_ffn_fixtures.py
// (2 blocks, d 32, FFN 32→128→32, 4 heads, 6 tokens; ffn_erf pre-norm with the Erf GELU, ffn_tanh post-norm
// with the tanh approximation), as exported and with the GELUs in linfold's blend form.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadModel } from '../src/import/onnx-io.js';
import { Tensor } from '../src/import/tensor.js';
import type { Model } from '../src/import/ir.js';
import { audit } from '../src/analyze/audit.js';
import { renderTable, renderMarkdown } from '../src/analyze/render.js';
import { renderHtmlReport } from '../src/report/html.js';
import { spelling } from '../src/analyze/transformer.js';
import { makeLinearizable } from '../src/train/linearizable.js';
import { fixture, manifest, type ManifestActivation } from './support/fixtures.js';

/** The fixture's GELUs as blends with A = 1 on the first `linear` of 128 channels, 0.4 on the rest. */
function blended(file: string, linear: number): Model {
  const l = makeLinearizable(loadModel(`fixtures/${file}`));
  for (const s of l.slopes) l.model.graph.initializers.set(s.name, Tensor.f32(s.name, [128], Array.from({ length: 128 }, (_, c) => (c < linear ? 1 : 0.4))));
  return l.model;
}

test('spelling names the GELU form', () => {
  const g = (form: 'op' | 'pattern' | 'blend', approximate: string, baseForm?: 'op' | 'pattern') => spelling({ kind: 'gelu', form, baseForm, params: { approximate } });
  assert.equal(g('pattern', 'none'), 'Erf chain');
  assert.equal(g('pattern', 'tanh'), 'tanh approximation');
  assert.equal(g('op', 'none'), 'Gelu op');
  assert.equal(g('op', 'tanh'), 'Gelu op (tanh approximation)');
  assert.equal(g('blend', 'none', 'pattern'), 'blend around Erf chain');
  assert.equal(spelling({ kind: 'relu', form: 'op', params: {} }), 'relu op');
});

for (const [file, form] of [['ffn_erf.onnx', 'Erf chain'], ['ffn_tanh.onnx', 'tanh approximation']] as const) {
  test(`${file} as exported: ${form} ×2, Softmax 2 and LayerNorm 4 apart, two 32→128→32 FFNs, per-token NAPL 1`, () => {
    const r = audit(loadModel(`fixtures/${file}`));
    const t = r.transformer!;
    assert.ok(t);
    assert.deepEqual(r.layers.map((l) => l.spelling), [form, form]);
    assert.deepEqual(t.spellings, { [form]: 2 });
    // two blocks, each: one attention Softmax; two LayerNorms (norm1, norm2)
    assert.equal(t.softmax, 2);
    assert.equal(t.layerNorm, 4);
    assert.equal(r.otherNonlinear.counts.softmax, 2);
    assert.equal(r.otherNonlinear.counts.layernorm, 4);
    assert.deepEqual(t.ffn.map((f) => [f.dIn, f.hidden, f.dOut, f.linearChannels, f.fold, f.macsPerToken, f.foldedMacsPerToken]),
      [[32, 128, 32, 0, 'none', 8192, 8192], [32, 128, 32, 0, 'none', 8192, 8192]]);
    assert.match(t.ffn[0].fc1, /layers\.0\/linear1\/MatMul/);
    assert.match(t.ffn[1].fc2, /layers\.1\/linear2\/MatMul/);
    // Each FFN is one branch of a two-way residual Add whose other branch is the identity: ½·0 + ½·1 after
    // block 0, ½·½ + ½·(½ + 1) = 1 after block 1 (attention adds no activation units: its Add keeps NAPL).
    assert.ok(Math.abs(t.perToken.napl - 1) < 1e-9, String(t.perToken.napl));
    assert.equal(t.perToken.napl, r.summary.napl);
    // APL: paths through a 128-wide FFN outnumber the skip path's by far, so almost every path meets both GELUs
    assert.ok(t.perToken.apl > 1.9 && t.perToken.apl <= 2, String(t.perToken.apl));
    assert.match(renderTable(r), /Transformer: per-token path length NAPL 1\.000.*Softmax 2, LayerNorm 4/);
    assert.match(renderMarkdown(r), /## Transformer/);
  });
}

test('ffn_erf.onnx linearized on 96 of 128 channels: split FFNs, per-token NAPL ¼; all linear: merged FFNs, NAPL 0', async () => {
  const r = audit(blended('ffn_erf.onnx', 96));
  const t = r.transformer!;
  assert.deepEqual(t.spellings, { 'blend around Erf chain': 2 });
  // split: 32·32 (core fc1) + 32·32 (core fc2) + 32·32 (bypass) = 3072 < 8192
  assert.deepEqual(t.ffn.map((f) => [f.linearChannels, f.nonlinearChannels, f.fold, f.foldedMacsPerToken]), [[96, 32, 'split', 3072], [96, 32, 'split', 3072]]);
  // a GELU layer with 32 of 128 channels nonlinear adds ¼: ½·¼ = ⅛ after block 0, ½·⅛ + ½·(⅛ + ¼) = ¼ after block 1
  assert.ok(Math.abs(t.perToken.napl - 0.25) < 1e-9, String(t.perToken.napl));
  const lin = audit(blended('ffn_erf.onnx', 128)).transformer!;
  assert.deepEqual(lin.ffn.map((f) => [f.fold, f.foldedMacsPerToken]), [['merge', 1024], ['merge', 1024]]);
  assert.equal(lin.perToken.napl, 0);
  // the HTML report shows the FFN layers, before and after
  const html = await renderHtmlReport({ report: audit(loadModel('fixtures/ffn_erf.onnx')), compare: r });
  assert.match(html, /<h2>Transformer FFN layers<\/h2>/);
  assert.match(html, /layers\.0\/linear1\/MatMul<\/code> → <code>\/enc\/layers\.0\/linear2\/MatMul/);
  assert.equal((html.match(/32 → 128 → 32/g) ?? []).length, 2);
  assert.match(html, /96 \/ 128/);
});

test('a CNN has no transformer section', () => {
  assert.equal(audit(loadModel('fixtures/mnist_cnn.onnx')).transformer, undefined);
});

// The trained fixtures (fixtures/make_transformers.py): the manifest, written by the generator from the torch
// modules, says which GELU each block uses and how wide its FFN is; pre-norm blocks add ½ each to the
// per-token NAPL (the FFN is one of two branches of the residual Add), so 4 blocks give 2.
for (const name of ['vit_mnist', 'vit_mnist_tanh', 'char_lm', 'bert_tiny']) {
  test(`${name} (trained) as exported: the GELU form named, Softmax/LayerNorm apart, one FFN row per GELU, in the HTML report too`, async () => {
    const fx = manifest().fixtures[name];
    const r = audit(loadModel(fixture(fx.file)));
    const t = r.transformer!;
    const gelus = fx.expected_census.activations.filter((a) => a.kind === 'gelu') as (ManifestActivation & { approximate: string })[];
    const forms = gelus.map((a) => (a.approximate === 'tanh' ? 'tanh approximation' : 'Erf chain'));
    assert.equal(t.spellings[forms[0]], gelus.length); // (bert_tiny's pooler Tanh is spelled too)
    assert.deepEqual(r.layers.filter((l) => l.kind === 'gelu').map((l) => l.spelling), forms);
    assert.equal(t.softmax, fx.expected_census.softmax);
    assert.equal(t.layerNorm, fx.expected_census.layernorm);
    // (bert_tiny's pooler, Gemm → Tanh → Gemm classifier, is an FFN too: 64 → 64 → 2)
    const ffn = t.ffn.filter((f) => f.spelling === forms[0]);
    assert.equal(t.ffn.length - ffn.length, name === 'bert_tiny' ? 1 : 0);
    assert.deepEqual(ffn.map((f) => [f.hidden, f.dIn, f.dOut, f.linearChannels, f.fold]), gelus.map((a) => [a.channels, a.channels / 4, a.channels / 4, 0, 'none']));
    assert.deepEqual(ffn.map((f) => f.activation.replace(/^\//, '').replace(/\//g, '.')), gelus.map((a) => a.module));
    if (name !== 'bert_tiny') assert.ok(Math.abs(t.perToken.napl - gelus.length / 2) < 1e-9, String(t.perToken.napl));
    else assert.ok(t.perToken.napl > 1 && t.perToken.napl <= 2, String(t.perToken.napl)); // post-norm, then the pooler's Tanh on one token
    const html = await renderHtmlReport({ report: r });
    const section = /<section id="ffn">([\s\S]*?)<\/section>/.exec(html)?.[1] ?? '';
    assert.equal((section.match(new RegExp(`${gelus[0].channels / 4} → ${gelus[0].channels} → ${gelus[0].channels / 4}`, 'g')) ?? []).length, gelus.length);
    for (const f of ffn) assert.ok(section.includes(f.activation), f.activation);
  });
}
