"""PyTorch CPU reference for bench/train-step.ts: one SGD step (forward, cross-entropy, backward, update) of the
mnist_cnn architecture with BatchNormalization folded into the convs (the graph the ONNX eval export holds):
stem Conv 3x3 1->24 + ReLU + MaxPool 2, BasicBlock 24->24, BasicBlock 24->48 stride 2 (1x1 downsample), GAP, FC.
Prints one JSON line: {"threads": {"1": ms, "2": ms}, "torch": version}; with --serve, runs steps on request
(see serve) so that the caller can interleave them with its own."""
import json
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1)
        self.down = nn.Conv2d(cin, cout, 1, stride, 0) if stride != 1 or cin != cout else None

    def forward(self, x):
        identity = x if self.down is None else self.down(x)
        return F.relu(self.conv2(F.relu(self.conv1(x))) + identity)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 24, 3, 1, 1)
        self.b1 = Block(24, 24, 1)
        self.b2 = Block(24, 48, 2)
        self.fc = nn.Linear(48, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.stem(x)), 2)
        x = self.b2(self.b1(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def serve(batch):
    """Interleaving mode (bench/train-step.ts): per stdin line "threads steps", run that many steps with a model
    kept per thread count and print their wall and CPU (process) times (ms) as {"wall": [...], "cpu": [...]}."""
    torch.manual_seed(0)
    x = torch.randn(batch, 1, 28, 28)
    y = torch.randint(0, 10, (batch,))
    models = {}
    print(json.dumps({"torch": torch.__version__}), flush=True)
    for line in sys.stdin:
        threads, steps = (int(v) for v in line.split())
        torch.set_num_threads(threads)
        if threads not in models:
            model = Net()
            models[threads] = (model, torch.optim.SGD(model.parameters(), lr=0.01))
        model, opt = models[threads]
        wall, cpu = [], []
        for _ in range(steps):
            t0, c0 = time.perf_counter(), time.process_time()
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
            wall.append((time.perf_counter() - t0) * 1000)
            cpu.append((time.process_time() - c0) * 1000)
        print(json.dumps({"wall": wall, "cpu": cpu}), flush=True)


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        serve(int(sys.argv[2]) if len(sys.argv) > 2 else 64)
        return
    batch = int(sys.argv[1]) if len(sys.argv) > 1 else 64
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    torch.manual_seed(0)
    x = torch.randn(batch, 1, 28, 28)
    y = torch.randint(0, 10, (batch,))
    out = {"torch": torch.__version__, "threads": {}}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        model = Net()
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
        times = []
        for r in range(runs + 2):
            t0 = time.perf_counter()
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            dt = (time.perf_counter() - t0) * 1000
            if r >= 2:
                times.append(dt)
        times.sort()
        out["threads"][str(threads)] = times[len(times) // 2]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
