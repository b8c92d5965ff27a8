#!/usr/bin/python3
"""make bench-torch: orch's step time against PyTorch's, measured fairly.

Towers (batch, image): `small` (the preset: depth 8, hidden 128, MLP 344,
2 x 448x448) and `tower` (depth 4, hidden 128, MLP 512, 4 heads, full
attention in every block, out 256, 1 x 448x448 = 1024 patches); strategies
surgery, detach, LoRA and full; 1 and 2 threads. For each, the median step
(of STEPS - 1 after the first) of `orch run` with the same pipeline (read
back from a scratch store; detach's feature cache cannot hit within one
epoch), and of the oracle model of make_fixtures.py (the tower written with
torch ops the way Hugging Face computes it; windows of equal length batched
into one product, as an expert would) in PyTorch: forward, backward, AdamW.

The baseline is made fair, as an expert would run it:
  - the same BLAS library and kernels as orch: Debian's torch calls BLAS
    through libblas.so.3; the torch process gets BLIS's libblas.so.3 first
    on LD_LIBRARY_PATH and BLIS_ARCH_TYPE = the number of the
    sub-configuration orch chose (`orch --version`); the torch process
    reports which BLAS it actually mapped (/proc/self/maps) and BLIS's
    sub-configuration in it;
  - a tuned allocator: GLIBC_TUNABLES mmap and trim thresholds (no page
    faults on every large tensor);
  - OMP_NUM_THREADS, BLIS_NUM_THREADS, OPENBLAS_NUM_THREADS and
    torch.set_num_threads at the thread count; OPENBLAS_CORETYPE and
    OPENBLAS_L2_SIZE unset; GOMP_SPINCOUNT=1000, the OpenMP wait policy orch
    itself runs with (unless the user set a wait policy).
  - A second reference, when OpenBLAS is present (Debian's
    libopenblas0-pthread, or ORCH_OPENBLAS_DIR = a directory with its
    libblas.so.3): torch on OpenBLAS; the faster of the two baselines per
    row is the one orch is compared with, and the table says which.
orch runs in its own process with the same thread count, one run per row,
interleaved with torch's timing of the same row (torch stays loaded in one
worker process per BLAS and thread count, driven over a pipe).

Prints a table and one FIGURE line per row:
  torch.<tower>.<strategy>.t<threads>.orch_vs_torch  target <=0.5 (<=0.7 full)

Run: make bench-torch   (needs Debian's python3-torch; optional)
     BENCH_QUICK=1 make bench-torch   (the issue's tower only, 6 steps per run)
"""
import ctypes
import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
ORCH = os.path.join(TOP, "build", "orch")
STEPS = 10  # per timed run; --quick: 6, --steps N
BLIS_DIR = "/usr/lib/x86_64-linux-gnu/blis-openmp"
OPENBLAS_DIRS = [os.environ.get("ORCH_OPENBLAS_DIR", ""),
                 "/usr/lib/x86_64-linux-gnu/openblas-pthread"]
TUNABLES = "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=17179869184"

TOWERS = {
    "small": dict(cfg=dict(depth=8, hidden=128, heads=4, inter=344, patch=14, tp=2, cin=3, merge=2,
                           window=112, fullatt=(3, 7), out=256),
                  image=448, batch=2, orch_set=["model.preset=small"]),
    "tower": dict(cfg=dict(depth=4, hidden=128, heads=4, inter=512, patch=14, tp=2, cin=3, merge=2,
                           window=112, fullatt=(0, 1, 2, 3), out=256),
                  image=448, batch=1,
                  orch_set=["model.preset=small", "model.depth=4", "model.intermediate_size=512",
                            "model.fullatt_block_indexes={0, 1, 2, 3}"]),
}
STRATEGIES = ["surgery", "detach", "lora", "full"]
PIPELINE = {"surgery": "surgery.lua", "detach": "detach.lua", "lora": "lora.lua",
            "full": "base.lua"}  # base.lua is the control run: full fine-tuning
TARGET = {"surgery": 0.5, "detach": 0.5, "lora": 0.5, "full": 0.7}
LORA_TARGETS = ["visual.merger.mlp.0", "visual.merger.mlp.2"]  # as pipelines/lora.lua


# ------------------------------------------------------------ the worker

def worker(threads):
    """Loads torch once, reports its BLAS, then times the rows the driver
    asks for (one JSON line in, one out)."""
    import torch
    import torch.nn.functional as F
    sys.path.insert(0, HERE)
    import make_fixtures as mf

    torch.set_num_threads(threads)
    blas = blas_in_process(torch)
    print(json.dumps(dict(torch=torch.__version__, threads=torch.get_num_threads(), **blas)),
          flush=True)

    def attention(q, k, v, cu, hd):
        """Softmax attention per segment; equal segments batched in one bmm."""
        lens = [int(cu[s + 1] - cu[s]) for s in range(len(cu) - 1)]
        if len(set(lens)) == 1:
            L, S = lens[0], len(lens)
            qs, ks, vs = (t.reshape(S, L, t.shape[1], hd).transpose(1, 2) for t in (q, k, v))
            att = F.softmax((qs @ ks.transpose(-1, -2)) * hd ** -0.5, dim=-1)
            return (att @ vs).transpose(1, 2).reshape(q.shape[0], -1)
        outs = []
        for s in range(len(lens)):
            lo, hi = int(cu[s]), int(cu[s + 1])
            qs, ks, vs = (t[lo:hi].transpose(0, 1) for t in (q, k, v))
            att = F.softmax((qs @ ks.transpose(1, 2)) * hd ** -0.5, dim=-1)
            outs.append((att @ vs).transpose(0, 1).reshape(hi - lo, -1))
        return torch.cat(outs, dim=0)

    def tower(P, pixel_values, grids, lora=None):
        """mf.tower with the batched attention above (same maths)."""
        c = mf.CFG
        d, H = c["hidden"], c["heads"]
        hd = d // H
        x = pixel_values.view(-1, c["cin"], c["tp"], c["patch"], c["patch"])
        x = F.conv3d(x, P["visual.patch_embed.proj.weight"],
                     stride=(c["tp"], c["patch"], c["patch"])).view(-1, d)
        rot = mf.rot_pos_emb(grids, hd)
        widx, cu_win = mf.window_index(grids)
        unit = c["merge"] ** 2
        N = x.shape[0]
        x = x.reshape(N // unit, unit, -1)[widx].reshape(N, -1)
        rot = rot.reshape(N // unit, unit, -1)[widx].reshape(N, -1)
        emb = torch.cat((rot, rot), dim=-1)
        cos, sin = emb.cos().unsqueeze(-2), emb.sin().unsqueeze(-2)
        cu_full = F.pad(torch.tensor([t * h * w for t, h, w in grids for _ in range(t)]).cumsum(0),
                        (1, 0))
        for i in range(c["depth"]):
            b = f"visual.blocks.{i}."
            cu = cu_full if i in c["fullatt"] else cu_win
            hn = mf.rms_norm(x, P[b + "norm1.weight"])
            qkv = mf.linear(P, b + "attn.qkv", hn, lora)
            q, k, v = qkv.reshape(N, 3, H, hd).permute(1, 0, 2, 3).unbind(0)
            q = q * cos + mf.rotate_half(q) * sin
            k = k * cos + mf.rotate_half(k) * sin
            o = attention(q, k, v, cu, hd)
            x = x + mf.linear(P, b + "attn.proj", o, lora)
            hn = mf.rms_norm(x, P[b + "norm2.weight"])
            g = mf.linear(P, b + "mlp.gate_proj", hn, lora)
            u = mf.linear(P, b + "mlp.up_proj", hn, lora)
            x = x + mf.linear(P, b + "mlp.down_proj", F.silu(g) * u, lora)
        z = mf.rms_norm(x, P["visual.merger.ln_q.weight"]).view(-1, unit * d)
        y = mf.linear(P, "visual.merger.mlp.2",
                      F.gelu(mf.linear(P, "visual.merger.mlp.0", z, lora)), lora)
        return y[torch.argsort(widx)]

    def step_ms(name, strategy):
        spec = TOWERS[name]
        mf.CFG.clear()
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
        elif strategy == "lora":
            lora = {}
            for t in LORA_TARGETS:
                out_dim = 4 * c["hidden"] if t.endswith("0") else c["out"]
                a = (torch.randn(4, 4 * c["hidden"]) * 0.01).requires_grad_()
                b = torch.zeros(out_dim, 4, requires_grad=True)
                lora[t] = (a, b)
                train += [a, b]
        else:  # full: every parameter trains
            for k in P:
                P[k] = P[k].clone().requires_grad_()
                train.append(P[k])
        opt = torch.optim.AdamW(train, lr=1e-3)
        times = []
        for _ in range(STEPS):
            t0 = time.perf_counter()
            if strategy == "detach":
                with torch.no_grad():
                    feats = tower(P, pv, grids)
                feats = F.linear(feats, aw, ab)
            else:
                feats = tower(P, pv, grids, lora)
            loss = mf.head_loss(head, feats, grids, labels)
            opt.zero_grad()
            loss.backward()
            opt.step()
            times.append((time.perf_counter() - t0) * 1e3)
        times = sorted(times[1:])
        return times[len(times) // 2]

    for line in sys.stdin:
        req = json.loads(line)
        print(json.dumps(dict(ms=step_ms(req["tower"], req["strategy"]))), flush=True)


def blas_in_process(torch):
    """Which BLAS libraries this process mapped (after a BLAS call)."""
    torch.ones(256, 256) @ torch.ones(256, 256)
    libs = set()
    with open("/proc/self/maps") as maps:
        for line in maps:
            fields = line.split()
            if len(fields) >= 6 and re.search(r"lib(blas|blis|openblas)[^/]*\.so", fields[-1]):
                libs.add(fields[-1])
    return dict(blas_libs=sorted(libs))


# ------------------------------------------------------------ the driver

def orch_kernels():
    """The sub-configuration orch chose, from `orch --version`."""
    out = subprocess.run([ORCH, "--version"], check=True, capture_output=True, text=True).stdout
    m = re.search(r"kernels '([a-z0-9_]+)'", out)
    return (m.group(1) if m else None), out.strip()


def blis_arch_number(name):
    """BLIS_ARCH_TYPE (an integer in BLIS 0.9) of a sub-configuration name."""
    lib = ctypes.CDLL(os.path.join(BLIS_DIR, "libblis.so.4"))
    lib.bli_init()
    lib.bli_arch_string.restype = ctypes.c_char_p
    for i in range(26):  # BLIS 0.9's arch_t has 26 entries, generic last
        if lib.bli_arch_string(i).decode() == name:
            return i
    return None


def worker_env(threads, blas_dir, arch):
    env = dict(os.environ)
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        env.pop(var, None)
    # BLIS's libblas.so.3 exports no bli_* query: BLIS_ARCH_DEBUG makes it
    # say on stderr which sub-configuration it selected
    env["BLIS_ARCH_DEBUG"] = "1"
    env["LD_LIBRARY_PATH"] = blas_dir + (":" + env["LD_LIBRARY_PATH"]
                                         if env.get("LD_LIBRARY_PATH") else "")
    env["GLIBC_TUNABLES"] = TUNABLES
    # the OpenMP wait policy orch runs with (core/startup_env.h): libgomp's
    # default spins for milliseconds and, with torch's and BLIS's teams on 2
    # shared cores, steps at 2 threads collapse
    if "OMP_WAIT_POLICY" not in env and "GOMP_SPINCOUNT" not in env:
        env["GOMP_SPINCOUNT"] = "1000"
    for var in ("OMP_NUM_THREADS", "BLIS_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    if arch is not None:
        env["BLIS_ARCH_TYPE"] = str(arch)
    else:
        env.pop("BLIS_ARCH_TYPE", None)
    return env


class Worker:
    def __init__(self, label, threads, blas_dir, arch):
        self.label = label
        self.stderr = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--worker",
                                      str(threads), str(STEPS)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.stderr, text=True,
                                     env=worker_env(threads, blas_dir, arch))
        self.info = json.loads(self.proc.stdout.readline())
        self.stderr.seek(0)
        m = re.search(r"selecting sub-configuration '(\w+)'", self.stderr.read())
        self.info["subconfig"] = m.group(1) if m else "- (not BLIS)"

    def step_ms(self, tower, strategy):
        self.proc.stdin.write(json.dumps(dict(tower=tower, strategy=strategy)) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())["ms"]

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()
        self.stderr.close()


def orch_step_ms(tower, strategy, threads, scratch):
    spec = TOWERS[tower]
    db = os.path.join(scratch, f"{tower}-{strategy}-{threads}.db")
    cmd = [ORCH, "run", "--quiet", "--db", db, "--threads", str(threads),
           os.path.join(TOP, "pipelines", PIPELINE[strategy])]
    for s in spec["orch_set"] + [f"data.image_size={{{spec['image']}, {spec['image']}}}",
                                 f"schedule.batch_size={spec['batch']}",
                                 f"schedule.steps={STEPS}"]:
        cmd += ["--set", s]
    env = dict(os.environ)
    env.pop("BLIS_ARCH_TYPE", None)  # orch chooses its kernels itself
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env)
    with sqlite3.connect(db) as con:
        rows = sorted(r[0] for r in con.execute("SELECT wall_ms FROM steps WHERE step > 0"))
    return rows[len(rows) // 2]


def describe(w):
    i = w.info
    libs = ", ".join(i["blas_libs"]) or "none found"
    return (f"{w.label}: torch {i['torch']}, {i['threads']} thread(s), BLAS mapped: {libs}; "
            f"BLIS sub-configuration in torch: {i['subconfig']}")


def main():
    global STEPS
    quick = "--quick" in sys.argv
    if quick:
        STEPS = 6
    if "--steps" in sys.argv:
        STEPS = int(sys.argv[sys.argv.index("--steps") + 1])
    kernels, version = orch_kernels()
    print("bench-torch: orch " + version.replace("\n", "; "))
    arch = blis_arch_number(kernels) if kernels else None
    print(f"bench-torch: torch gets BLIS from {BLIS_DIR} with BLIS_ARCH_TYPE={arch} ({kernels}), "
          f"GLIBC_TUNABLES={TUNABLES}, GOMP_SPINCOUNT=1000 unless a wait policy is set; median of {STEPS - 1} steps after the first")
    openblas = next((d for d in OPENBLAS_DIRS if d and os.path.exists(os.path.join(d, "libblas.so.3"))),
                    None)
    if openblas is None:
        print("bench-torch: OpenBLAS not found (libopenblas0-pthread or ORCH_OPENBLAS_DIR): "
              "the BLIS baseline only")
    towers = ["tower"] if quick else ["small", "tower"]
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for threads in (1, 2):
            workers = [Worker("torch+BLIS", threads, BLIS_DIR, arch)]
            if openblas is not None:
                workers.append(Worker("torch+OpenBLAS", threads, openblas, None))
            for w in workers:
                print("bench-torch: " + describe(w), flush=True)
                if w.label == "torch+BLIS" and w.info["subconfig"] != kernels:
                    print(f"bench-torch: WARNING: torch runs BLIS '{w.info['subconfig']}', "
                          f"orch '{kernels}'", flush=True)
            print(f"{'tower':6} {'strategy':8} {'thr':>3} {'orch ms':>9} "
                  + " ".join(f"{w.label:>15}" for w in workers)
                  + f" {'baseline':>15} {'orch/torch':>10}  target", flush=True)
            for tower in towers:
                for strategy in STRATEGIES:
                    t_orch = orch_step_ms(tower, strategy, threads, scratch)
                    t_torch = [w.step_ms(tower, strategy) for w in workers]
                    best = min(range(len(workers)), key=lambda j: t_torch[j])
                    ratio = t_orch / t_torch[best]
                    target = TARGET[strategy]
                    verdict = "met" if ratio <= target else "MISSED"
                    print(f"{tower:6} {strategy:8} {threads:3d} {t_orch:9.2f} "
                          + " ".join(f"{t:15.2f}" for t in t_torch)
                          + f" {workers[best].label:>15} {ratio:10.3f}  {verdict} <={target}",
                          flush=True)
                    rows.append((tower, strategy, threads, t_orch, t_torch[best],
                                 workers[best].label, ratio, target, verdict))
            for w in workers:
                w.close()
    for tower, strategy, threads, t_orch, t_torch, label, ratio, target, verdict in rows:
        print(f"FIGURE\ttorch.{tower}.{strategy}.t{threads}.orch_vs_torch\t{ratio:.4g}\tx torch\t"
              f"<={target}\t{verdict}\t{tower} {strategy}, {threads} thread(s): orch step "
              f"{t_orch:.1f} ms over the best PyTorch baseline ({label}) {t_torch:.1f} ms")


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "--worker":
        STEPS = int(sys.argv[3])
        worker(int(sys.argv[2]))
    else:
        main()
