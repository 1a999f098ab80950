#!/usr/bin/env python3
# Stand-ins for the tfix fixtures used by bench/transformer.ts while those were still training: the classes of
# fixtures/make_transformers.py (branch tfix), ViT with 7x7 patches (17 tokens) trained 4 epochs, CharLM trained 150 steps.
# Usage (repo root, Debian python): /usr/bin/python3 bench/transformer_standins.py vit 4 | lm 150 | data
# Writes scratch/vit/vit7.onnx, scratch/lm/lm_small.onnx; "data" writes scratch/data/{mnist_x,mnist_y,lm_train}.npy
import sys, time, numpy as np, torch, torch.nn as nn, torch.nn.functional as F
sys.path.insert(0, 'fixtures')
import make_fixtures as mf
torch.set_num_threads(1)
src = open('fixtures/make_transformers.py').read()
exec(src[src.index('class ViT(nn.Module):'):src.index('def set_gelu')])
exec(src[src.index('LM_VOCAB = 97'):src.index('# 3. BERT-style')].rsplit('# ---', 1)[0])
which = sys.argv[1]
if which == 'data':
    import make_fixtures as mf
    d = mf.load_mnist()
    x, y = d['train']
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(x))[:3000]
    np.save('scratch/data/mnist_x.npy', x.numpy()[idx].astype(np.float32)); np.save('scratch/data/mnist_y.npy', y.numpy()[idx].astype(np.int64))
    # LM training rows from the training files (their split: sorted index i % 10 != 9), their encoding
    def encode(text):
        text = text.replace("\t", "    ")
        b = np.frombuffer(text.encode("ascii", "replace"), dtype=np.uint8).astype(np.int64)
        out = np.zeros_like(b); out[b == 10] = 1
        pr = (b >= 32) & (b <= 126); out[pr] = b[pr] - 30
        return out
    files = sorted(glob.glob('/usr/lib/python3.11/*.py'))
    tr = np.concatenate([encode(open(f, encoding='utf-8', errors='replace').read() + '\n') for i, f in enumerate(files) if i % 10 != 9])
    st = rng.integers(0, len(tr) - 64, 1024)
    np.save('scratch/data/lm_train.npy', np.stack([tr[s:s + 64] for s in st]).astype(np.int64))
    print(len(files), len(tr))
elif which == 'vit':
    torch.manual_seed(0)
    data = mf.load_mnist()
    m = ViT(patch=7)
    acc = mf.train_mnist(m, data, epochs=int(sys.argv[2]), lr=3e-3)
    print('vit val acc', acc, flush=True)
    m.eval()
    torch.onnx.export(m, torch.zeros(1, 1, 28, 28), 'scratch/vit/vit7.onnx', opset_version=17, input_names=['input'], output_names=['logits'], dynamic_axes={'input': {0: 'batch'}, 'logits': {0: 'batch'}})
else:
    torch.manual_seed(0)
    def encode(text):
        text = text.replace("\t", "    ")
        b = np.frombuffer(text.encode("ascii", "replace"), dtype=np.uint8).astype(np.int64)
        out = np.zeros_like(b); out[b == 10] = 1
        pr = (b >= 32) & (b <= 126); out[pr] = b[pr] - 30
        return out
    import glob
    files = sorted(glob.glob('/usr/lib/python3.11/*.py'))
    tr = np.concatenate([encode(open(f, encoding='utf-8', errors='replace').read() + '\n') for i, f in enumerate(files) if i % 10 != 9])
    va = np.load('fixtures/data/char_lm_val.npy')
    m = CharLM()
    opt = torch.optim.AdamW(m.parameters(), lr=2e-3, weight_decay=0.01)
    steps = int(sys.argv[2]); rng = np.random.default_rng(0); t0 = time.time()
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps, pct_start=0.1)
    for s in range(steps):
        st = rng.integers(0, len(tr) - 65, 32)
        x = torch.from_numpy(np.stack([tr[i:i + 64] for i in st]))
        y = torch.from_numpy(np.stack([tr[i + 1:i + 65] for i in st]))
        loss = F.cross_entropy(m(x).reshape(-1, 97), y.reshape(-1))
        opt.zero_grad(); loss.backward(); opt.step(); sched.step()
        if s % 50 == 0 or s == steps - 1:
            m.eval()
            with torch.no_grad():
                v = torch.from_numpy(va)
                vl = F.cross_entropy(m(v)[:, :-1].reshape(-1, 97), v[:, 1:].reshape(-1))
            m.train()
            print(f'step {s} loss {float(loss):.3f} held-out ppl {float(vl.exp()):.3f} ({time.time() - t0:.0f} s)', flush=True)
    m.eval()
    torch.onnx.export(m, torch.zeros(1, 64, dtype=torch.long), 'scratch/lm/lm_small.onnx', opset_version=17, input_names=['tokens'], output_names=['logits'], dynamic_axes={'tokens': {0: 'batch'}, 'logits': {0: 'batch'}})
