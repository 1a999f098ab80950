#!/usr/bin/env python3
"""Export torchvision mobilenet_v2() and resnet18() to ONNX the way a user's default export looks.

    /usr/bin/python3 bench/export-torchvision.py [OUT_DIR] [--dynamic] [--opset N]

Random initialisation (weights=None: nothing is downloaded), torch.manual_seed(0), eval mode, then
torch.onnx.export(model, x, path) with the exporter's defaults: input 1x3x224x224, fixed batch (no dynamic_axes),
the exporter's default opset (14 in torch 1.13; --opset to choose), BatchNorm folded into the convs, default
input/output names. --dynamic writes <name>_dynamic.onnx instead, with input/output named input/logits and a
dynamic batch axis `batch`. OUT_DIR defaults to bench/out/models/ (gitignored: the files are 14 MB and 47 MB,
never commit them). Prints one line per file: path, size, input and output names and shapes.
"""
import argparse
import os

import torch
import torchvision
import onnx

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = ("mobilenet_v2", "resnet18")


def shape_of(v):
    return "x".join(d.dim_param or str(d.dim_value) for d in v.type.tensor_type.shape.dim)


def export(name, out_dir, dynamic, opset):
    torch.manual_seed(0)
    model = getattr(torchvision.models, name)(weights=None).eval()
    x = torch.randn(1, 3, 224, 224)
    kwargs = {}
    if opset is not None:
        kwargs["opset_version"] = opset
    if dynamic:
        kwargs.update(input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    path = os.path.join(out_dir, f"{name}{'_dynamic' if dynamic else ''}.onnx")
    tmp = path + ".tmp"
    with torch.no_grad():
        torch.onnx.export(model, (x,), tmp, **kwargs)
    m = onnx.load(tmp)
    onnx.checker.check_model(m)
    os.replace(tmp, path)  # no half-written model under the final name
    ios = ", ".join(f"{v.name} [{shape_of(v)}]" for v in m.graph.input) + " -> " + \
        ", ".join(f"{v.name} [{shape_of(v)}]" for v in m.graph.output)
    opset_used = next(o.version for o in m.opset_import if o.domain in ("", "ai.onnx"))
    print(f"{path}  {os.path.getsize(path)} bytes, opset {opset_used}, "
          f"{sum(p.numel() for p in model.parameters())} params, {ios}")
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out_dir", nargs="?", default=os.path.join(REPO, "bench", "out", "models"))
    ap.add_argument("--dynamic", action="store_true", help="dynamic batch axis (writes <name>_dynamic.onnx)")
    ap.add_argument("--opset", type=int, default=None, help="opset_version (default: the exporter's default)")
    args = ap.parse_args()
    torch.set_num_threads(2)
    os.makedirs(args.out_dir, exist_ok=True)
    for name in MODELS:
        export(name, args.out_dir, args.dynamic, args.opset)


if __name__ == "__main__":
    main()
