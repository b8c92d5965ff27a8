#!/usr/bin/python3
"""make bench-torch: orch's step time against PyTorch's on the same tower.

For the tiny and small presets and the surgery, detach and LoRA strategies
(as pipelines/*.lua declare them: batch 4 of 56x56 images for tiny, batch 2
of 448x448 for small), it times a training step of the oracle model of
make_fixtures.py in PyTorch (forward, backward, AdamW) and an `orch run` of
the same pipeline, with the same thread count (ORCH_THREADS, default 1), and
prints the median step times and orch/PyTorch ratios (below 1: orch faster).

orch's step time is the median wall_ms of its recorded steps after the
first, read back from a scratch store; its feature cache cannot hit within
one epoch, so detach runs the tower every step in both.

Run: make bench-torch   (needs Debian's python3-torch; optional)
"""
import os
import sqlite3
import subprocess
import sys
import tempfile
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_fixtures as mf  # noqa: E402

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ORCH = os.path.join(TOP, "build", "orch")
THREADS = int(os.environ.get("ORCH_THREADS", "1"))
STEPS = 10

PRESETS = {
    "tiny": dict(cfg=dict(depth=4, hidden=32, heads=4, inter=40, patch=2, tp=2, cin=3, merge=2,
                          window=8, fullatt=(1, 3), out=24), image=56, batch=4),
    "small": dict(cfg=dict(depth=8, hidden=128, heads=4, inter=344, patch=14, tp=2, cin=3, merge=2,
                           window=112, fullatt=(3, 7), out=256), image=448, batch=2),
}
TARGETS = ["visual.merger.mlp.0", "visual.merger.mlp.2"]


def torch_step_ms(preset, strategy):
    spec = PRESETS[preset]
    mf.CFG.update(spec["cfg"])
    mf.LORA_RANK, mf.LORA_ALPHA = 4, 8.0
    c = mf.CFG
    side = spec["image"] // c["patch"]
    grids = [(1, side, side)] * spec["batch"]
    gen = torch.Generator().manual_seed(0)
    P = mf.make_params(gen)
    n = sum(t * h * w for t, h, w in grids)
    pv = torch.randn(n, c["cin"] * c["tp"] * c["patch"] ** 2, generator=gen)
    labels = torch.tensor([i % 4 for i in range(spec["batch"])])
    head = {"head.weight": (torch.randn(4, c["out"]) * 0.1).requires_grad_(),
            "head.bias": torch.zeros(4, requires_grad=True)}
    train = list(head.values())
    lora = None
    if strategy == "surgery":
        for k in ("visual.merger.mlp.2.weight", "visual.merger.mlp.2.bias"):
            P[k] = P[k].clone().requires_grad_()
            train.append(P[k])
    elif strategy == "detach":
        aw = (torch.randn(c["out"], c["out"]) * 0.05).requires_grad_()
        ab = torch.zeros(c["out"], requires_grad=True)
        train += [aw, ab]
    else:
        lora = {}
        for t in TARGETS:
            out_dim = 4 * c["hidden"] if t.endswith("0") else c["out"]
            a = (torch.randn(4, 4 * c["hidden"]) * 0.01).requires_grad_()
            b = torch.zeros(out_dim, 4, requires_grad=True)
            lora[t] = (a, b)
            train += [a, b]
    opt = torch.optim.AdamW(train, lr=1e-3)
    times = []
    for _ in range(STEPS):
        t0 = time.perf_counter()
        if strategy == "detach":
            with torch.no_grad():
                feats = mf.tower(P, pv, grids)
            feats = F.linear(feats, aw, ab)
        else:
            feats = mf.tower(P, pv, grids, lora)
        loss = mf.head_loss(head, feats, grids, labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append((time.perf_counter() - t0) * 1e3)
    times = sorted(times[1:])
    return times[len(times) // 2]


def orch_step_ms(preset, strategy, scratch):
    spec = PRESETS[preset]
    db = os.path.join(scratch, f"{preset}-{strategy}.db")
    cmd = [ORCH, "run", "--db", db, "--threads", str(THREADS),
           os.path.join(TOP, "pipelines", f"{strategy}.lua"),
           "--set", f"model.preset={preset}",
           "--set", f"data.image_size={{{spec['image']}, {spec['image']}}}",
           "--set", f"schedule.batch_size={spec['batch']}",
           "--set", f"schedule.steps={STEPS}"]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    with sqlite3.connect(db) as con:
        rows = sorted(r[0] for r in con.execute("SELECT wall_ms FROM steps WHERE step > 0"))
    return rows[len(rows) // 2]


def main():
    torch.set_num_threads(THREADS)
    print(f"bench-torch: torch {torch.__version__}, {THREADS} thread(s), median of {STEPS - 1} steps")
    print(f"{'preset':8} {'strategy':9} {'orch ms':>9} {'torch ms':>9} {'orch/torch':>11}")
    with tempfile.TemporaryDirectory() as scratch:
        for preset in PRESETS:
            for strategy in ("surgery", "detach", "lora"):
                t_orch = orch_step_ms(preset, strategy, scratch)
                t_torch = torch_step_ms(preset, strategy)
                print(f"{preset:8} {strategy:9} {t_orch:9.2f} {t_torch:9.2f} {t_orch / t_torch:11.3f}",
                      flush=True)


if __name__ == "__main__":
    main()
