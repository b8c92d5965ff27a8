#!/usr/bin/python3
"""Checks `orch export-adapter` against PyTorch: the exported files, loaded
the way PEFT and plain PyTorch load them, reproduce orch's logits.

For each strategy (LoRA on visual.merger.mlp.0 and visual.blocks.1.attn.qkv,
surgery on visual.merger.mlp.2, detach with a Linear adapter) it trains a
short run of the tiny tower on the oracle's weights and data
(tests/oracle/fixtures: the tower of tests/oracle/make_fixtures.py),
exports it with `orch export-adapter`, has orch write its logits with
`orch predict`, then computes the logits in PyTorch from nothing but the
base weights and the exported folder:

  lora     adapter_config.json + adapter_model.safetensors as PEFT reads
           them: the keys without "base_model.model." name the modules, and
           each target Linear's weight becomes W + (lora_alpha / r) B A
           (PEFT's merge; eval mode, so no dropout)
  surgery  replacement.safetensors replaces the base model's tensors
  detach   adapter.safetensors is an nn.Linear applied to the tower's output
  all      head.safetensors is an nn.Linear on each image's mean row

and prints the largest absolute difference from orch's logits; it fails
(exit 1) above 1e-5.

Run from the repository (after `make orch`; needs Debian's python3-torch,
never run by `make test`):
    /usr/bin/python3 scripts/check_adapter.py [--orch ./orch] [--keep DIR]
"""
import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(TOP, "tests", "oracle", "fixtures")
sys.path.insert(0, os.path.join(TOP, "tests", "oracle"))
import make_fixtures as oracle  # noqa: E402  (the PyTorch tower)

TOLERANCE = 1e-5

STRATEGIES = {
    "lora": 'lora { rank = 4, alpha = 8, dropout = 0.1, '
            'targets = { "visual.merger.mlp.0", "visual.blocks.1.attn.qkv" } }',
    "surgery": 'surgery { replace = "visual.merger.mlp.2" }',
    "detach": 'detach { adapter = "linear" }',
}

PIPELINE = """return {{
  name = "check-adapter-{name}",
  model = {{ preset = "tiny", weights = "{fixtures}/weights.safetensors" }},
  data = {{ source = "npy", pixel_values = "{fixtures}/pixel_values.npy",
           image_grid_thw = "{fixtures}/image_grid_thw.npy", labels = "{fixtures}/labels.npy" }},
  strategy = {strategy},
  head = {{ kind = "classifier", classes = 3 }},
  optimizer = {{ kind = "adamw", lr = 3e-2 }},
  schedule = {{ steps = 6, batch_size = 2 }},
  seed = 7,
}}
"""


def load_safetensors(path):
    """The F32 tensors of a safetensors file, by the format's rules."""
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32", (path, name, info["dtype"])
        a, b = info["data_offsets"]
        arr = np.frombuffer(data[a:b], dtype="<f4").reshape(info["shape"])
        out[name] = torch.from_numpy(arr.copy())
    return out


def orch(binary, *args):
    subprocess.run([binary, *args], check=True, stdout=subprocess.DEVNULL,
                   env=dict(os.environ, ORCH_THREADS="1"))


def torch_logits(strategy, folder, P, pixel_values, grids):
    P = dict(P)
    head = load_safetensors(os.path.join(folder, "head.safetensors"))
    adapter = None
    if strategy == "lora":
        with open(os.path.join(folder, "adapter_config.json")) as f:
            config = json.load(f)
        assert config["peft_type"] == "LORA" and not config["use_rslora"]
        scaling = config["lora_alpha"] / config["r"]
        weights = load_safetensors(os.path.join(folder, "adapter_model.safetensors"))
        prefix = "base_model.model."
        for module in config["target_modules"]:
            A = weights[f"{prefix}{module}.lora_A.weight"]
            B = weights[f"{prefix}{module}.lora_B.weight"]
            P[module + ".weight"] = P[module + ".weight"] + scaling * (B @ A)
    elif strategy == "surgery":
        P.update(load_safetensors(os.path.join(folder, "replacement.safetensors")))
    else:
        adapter = load_safetensors(os.path.join(folder, "adapter.safetensors"))
    with torch.no_grad():
        feats = oracle.tower(P, pixel_values, grids)
        if adapter is not None:
            feats = F.linear(feats, adapter["weight"], adapter["bias"])
        counts = [t * h * w // oracle.CFG["merge"] ** 2 for t, h, w in grids]
        pooled = torch.stack([chunk.mean(0) for chunk in torch.split(feats, counts)])
        return F.linear(pooled, head["weight"], head["bias"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--orch", default=os.path.join(TOP, "orch"))
    ap.add_argument("--keep", help="work in this folder and keep it")
    args = ap.parse_args()
    torch.set_num_threads(1)
    work = args.keep or tempfile.mkdtemp(prefix="check-adapter-")
    os.makedirs(work, exist_ok=True)
    db = os.path.join(work, "orch.db")
    P = load_safetensors(os.path.join(FIXTURES, "weights.safetensors"))
    pixel_values = torch.from_numpy(np.load(os.path.join(FIXTURES, "pixel_values.npy")))
    grids = [tuple(int(v) for v in row) for row in np.load(os.path.join(FIXTURES, "image_grid_thw.npy"))]
    worst = 0.0
    for run_id, (name, strategy) in enumerate(STRATEGIES.items(), start=1):
        lua = os.path.join(work, f"{name}.lua")
        with open(lua, "w") as f:
            f.write(PIPELINE.format(name=name, fixtures=FIXTURES, strategy=strategy))
        orch(args.orch, "run", lua, "--db", db, "--quiet")
        folder = os.path.join(work, f"{name}-export")
        orch(args.orch, "export-adapter", str(run_id), "-o", folder, "--db", db, "--force")
        npy = os.path.join(work, f"{name}-logits.npy")
        orch(args.orch, "predict", str(run_id), "-o", npy, "--db", db)
        theirs = torch.from_numpy(np.load(npy))
        ours = torch_logits(name, folder, P, pixel_values, grids)
        diff = (ours - theirs).abs().max().item()
        worst = max(worst, diff)
        print(f"{name:8s} logits {tuple(theirs.shape)}  max |torch - orch| = {diff:.3g}")
    print(f"max difference {worst:.3g} (tolerance {TOLERANCE:g})")
    if not args.keep:
        shutil.rmtree(work)
    return 0 if worst <= TOLERANCE else 1


if __name__ == "__main__":
    sys.exit(main())
