import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OpRegistry, type OpsetRanged } from '../src/import/op-registry.js';

test('an op registry finds the entry covering an opset and refuses overlapping ranges', () => {
  const r = new OpRegistry<OpsetRanged & { tag: string }>('test rule');
  r.register({ op: 'Squeeze', since: 1, until: 12, tag: 'attr' }, { op: 'Squeeze', since: 13, tag: 'input' });
  r.register({ op: 'Gelu', domain: 'com.microsoft', tag: 'ms' });
  assert.equal(r.lookup('Squeeze', '', 11)?.tag, 'attr');
  assert.equal(r.lookup('Squeeze', 'ai.onnx', 13)?.tag, 'input');
  assert.equal(r.lookup('Squeeze', '', 21)?.tag, 'input');
  assert.equal(r.lookup('Gelu', '', 20), undefined);
  assert.equal(r.lookup('Gelu', 'com.microsoft', 1)?.tag, 'ms');
  assert.deepEqual(r.names().sort(), ['Squeeze', 'com.microsoft::Gelu']);
  assert.throws(() => r.register({ op: 'Squeeze', since: 12, until: 13, tag: 'x' }), /test rule Squeeze: opsets 12–13 overlap the registered 1–12/);
  assert.throws(() => r.register({ op: 'Gelu', domain: 'com.microsoft', since: 5, tag: 'y' }), /overlap the registered 1–∞/);
  r.register({ op: 'Squeeze', domain: 'other', since: 1, tag: 'own domain' });
  assert.equal(r.lookup('Squeeze', 'other', 3)?.tag, 'own domain');
});
