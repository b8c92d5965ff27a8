#!/usr/bin/python3
"""Writes the PyTorch fixtures the C suite compares orch against.

The tiny Qwen2.5-VL vision tower of docs (depth 4, hidden 32, 4 heads,
intermediate 40, patch 2, merge 2, window 8, full attention in blocks 1 and
3, out 24) written with torch ops the way Hugging Face's
modeling_qwen2_5_vl.py computes it (Conv3d patch embedding, rotate_half
rotary, get_window_index, per-segment eager attention with an fp32 softmax,
RMSNorm in fp32, SwiGLU MLP, merger with exact GELU, reverse window order),
then the orch head: mean-pool per image, Linear, cross-entropy.

For each strategy (surgery on visual.merger.mlp.2, detach with a Linear
adapter, LoRA on visual.merger.mlp.0 and visual.blocks.1.attn.qkv) it saves
the loss and the gradient of every trainable tensor, autograd's.

Run:  /usr/bin/python3 tests/oracle/make_fixtures.py   (needs python3-torch)
Output: tests/oracle/fixtures/*.safetensors and *.npy (committed; the C
tests never need torch).
"""
import json
import os
import struct

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "fixtures")

CFG = dict(depth=4, hidden=32, heads=4, inter=40, patch=2, tp=2, cin=3, merge=2,
           window=8, fullatt=(1, 3), out=24)
GRIDS = [(1, 6, 10), (1, 4, 4)]
LABELS = [2, 0]
CLASSES = 3
LORA_TARGETS = ["visual.merger.mlp.0", "visual.blocks.1.attn.qkv"]
LORA_RANK, LORA_ALPHA = 4, 8.0


def save_safetensors(path, tensors):
    """The safetensors format by hand: u64 header size, JSON header, data."""
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        arr = np.ascontiguousarray(tensors[name].detach().cpu().numpy().astype("<f4"))
        raw = arr.tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in blobs:
            f.write(raw)


def rms_norm(x, w, eps=1e-6):
    x32 = x.float()
    var = x32.pow(2).mean(-1, keepdim=True)
    return w * (x32 * torch.rsqrt(var + eps)).to(x.dtype)


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def rot_pos_emb(grids, hd):
    pos = []
    for t, h, w in grids:
        m = CFG["merge"]
        hpos = torch.arange(h).unsqueeze(1).expand(-1, w)
        hpos = hpos.reshape(h // m, m, w // m, m).permute(0, 2, 1, 3).flatten()
        wpos = torch.arange(w).unsqueeze(0).expand(h, -1)
        wpos = wpos.reshape(h // m, m, w // m, m).permute(0, 2, 1, 3).flatten()
        pos.append(torch.stack([hpos, wpos], dim=-1).repeat(t, 1))
    pos = torch.cat(pos, dim=0)
    dim = hd // 2
    inv_freq = 1.0 / (10000 ** (torch.arange(0, dim, 2, dtype=torch.float) / dim))
    max_grid = max(max(h, w) for _, h, w in grids)
    table = torch.outer(torch.arange(max_grid, dtype=torch.float), inv_freq)
    return table[pos].flatten(1)


def window_index(grids):
    m, ws = CFG["merge"], CFG["window"] // CFG["merge"] // CFG["patch"]
    idx, cu, base = [], [0], 0
    for t, h, w in grids:
        lh, lw = h // m, w // m
        index = torch.arange(t * lh * lw).reshape(t, lh, lw)
        ph, pw = ws - lh % ws, ws - lw % ws
        nh, nw = (lh + ph) // ws, (lw + pw) // ws
        padded = F.pad(index, (0, pw, 0, ph), "constant", -100)
        padded = padded.reshape(t, nh, ws, nw, ws).permute(0, 1, 3, 2, 4).reshape(t, nh * nw, ws, ws)
        seqlens = (padded != -100).sum([2, 3]).reshape(-1)
        flat = padded.reshape(-1)
        idx.append(flat[flat != -100] + base)
        cu.extend((seqlens.cumsum(0) * m * m + cu[-1]).tolist())
        base += t * lh * lw
    cu = torch.unique_consecutive(torch.tensor(cu, dtype=torch.int32))
    return torch.cat(idx), cu


def make_params(gen):
    c, P = CFG, {}
    d, cin, tp, p = c["hidden"], c["cin"], c["tp"], c["patch"]

    def rnd(*shape, scale=0.3):
        return ((torch.rand(*shape, generator=gen) * 2 - 1) * scale).float()

    P["visual.patch_embed.proj.weight"] = rnd(d, cin, tp, p, p)
    for i in range(c["depth"]):
        b = f"visual.blocks.{i}."
        P[b + "norm1.weight"] = 1 + rnd(d, scale=0.1)
        P[b + "norm2.weight"] = 1 + rnd(d, scale=0.1)
        P[b + "attn.qkv.weight"] = rnd(3 * d, d)
        P[b + "attn.qkv.bias"] = rnd(3 * d, scale=0.1)
        P[b + "attn.proj.weight"] = rnd(d, d)
        P[b + "attn.proj.bias"] = rnd(d, scale=0.1)
        for name, shape in (("gate_proj", (c["inter"], d)), ("up_proj", (c["inter"], d)),
                            ("down_proj", (d, c["inter"]))):
            P[b + f"mlp.{name}.weight"] = rnd(*shape)
            P[b + f"mlp.{name}.bias"] = rnd(shape[0], scale=0.1)
    P["visual.merger.ln_q.weight"] = 1 + rnd(d, scale=0.1)
    P["visual.merger.mlp.0.weight"] = rnd(4 * d, 4 * d, scale=0.15)
    P["visual.merger.mlp.0.bias"] = rnd(4 * d, scale=0.1)
    P["visual.merger.mlp.2.weight"] = rnd(c["out"], 4 * d, scale=0.15)
    P["visual.merger.mlp.2.bias"] = rnd(c["out"], scale=0.1)
    return P


def make_trainables(gen):
    c, T = CFG, {}

    def rnd(*shape, scale=0.2):
        return ((torch.rand(*shape, generator=gen) * 2 - 1) * scale).float()

    T["head.weight"] = rnd(CLASSES, c["out"])
    T["head.bias"] = rnd(CLASSES, scale=0.1)
    T["adapter.weight"] = rnd(c["out"], c["out"])
    T["adapter.bias"] = rnd(c["out"], scale=0.1)
    T["surgery.visual.merger.mlp.2.weight"] = rnd(c["out"], 4 * c["hidden"], scale=0.1)
    T["surgery.visual.merger.mlp.2.bias"] = rnd(c["out"], scale=0.1)
    for tgt in LORA_TARGETS:
        out_dim, in_dim = (4 * c["hidden"], 4 * c["hidden"]) if "merger" in tgt else (3 * c["hidden"], c["hidden"])
        T[f"{tgt}.lora_A.weight"] = rnd(LORA_RANK, in_dim)
        # B non-zero so that A's gradient is exercised (PEFT starts B at 0)
        T[f"{tgt}.lora_B.weight"] = rnd(out_dim, LORA_RANK, scale=0.1)
    return T


def linear(P, name, x, lora=None):
    y = F.linear(x, P[name + ".weight"], P.get(name + ".bias"))
    if lora is not None and name in lora:
        a, b = lora[name]
        y = y + (x @ a.t()) @ b.t() * (LORA_ALPHA / LORA_RANK)
    return y


def tower(P, pixel_values, grids, lora=None):
    c = CFG
    d, H = c["hidden"], c["heads"]
    hd = d // H
    x = pixel_values.view(-1, c["cin"], c["tp"], c["patch"], c["patch"])
    x = F.conv3d(x, P["visual.patch_embed.proj.weight"],
                 stride=(c["tp"], c["patch"], c["patch"])).view(-1, d)
    rot = rot_pos_emb(grids, hd)
    widx, cu_win = window_index(grids)
    unit = c["merge"] ** 2
    N = x.shape[0]
    x = x.reshape(N // unit, unit, -1)[widx].reshape(N, -1)
    rot = rot.reshape(N // unit, unit, -1)[widx].reshape(N, -1)
    emb = torch.cat((rot, rot), dim=-1)
    cos, sin = emb.cos(), emb.sin()
    cu_full = F.pad(torch.tensor([t * h * w for t, h, w in grids for _ in range(t)]).cumsum(0), (1, 0))
    for i in range(c["depth"]):
        b = f"visual.blocks.{i}."
        cu = cu_full if i in c["fullatt"] else cu_win
        hn = rms_norm(x, P[b + "norm1.weight"])
        qkv = linear(P, b + "attn.qkv", hn, lora)
        q, k, v = qkv.reshape(N, 3, H, hd).permute(1, 0, 2, 3).unbind(0)
        q = (q.float() * cos.unsqueeze(-2)) + (rotate_half(q.float()) * sin.unsqueeze(-2))
        k = (k.float() * cos.unsqueeze(-2)) + (rotate_half(k.float()) * sin.unsqueeze(-2))
        outs = []
        for s in range(len(cu) - 1):
            lo, hi = int(cu[s]), int(cu[s + 1])
            qs, ks, vs = (t[lo:hi].transpose(0, 1) for t in (q, k, v))
            att = (qs @ ks.transpose(1, 2)) * hd ** -0.5
            att = F.softmax(att, dim=-1, dtype=torch.float32)
            outs.append((att @ vs).transpose(0, 1))
        o = torch.cat(outs, dim=0).reshape(N, d)
        x = x + linear(P, b + "attn.proj", o, lora)
        hn = rms_norm(x, P[b + "norm2.weight"])
        g = linear(P, b + "mlp.gate_proj", hn, lora)
        u = linear(P, b + "mlp.up_proj", hn, lora)
        x = x + linear(P, b + "mlp.down_proj", F.silu(g) * u, lora)
    z = rms_norm(x, P["visual.merger.ln_q.weight"]).view(-1, unit * d)
    y = linear(P, "visual.merger.mlp.2", F.gelu(linear(P, "visual.merger.mlp.0", z, lora)), lora)
    return y[torch.argsort(widx)]


def head_loss(T, feats, grids, labels):
    counts = [t * h * w // CFG["merge"] ** 2 for t, h, w in grids]
    pooled = torch.stack([chunk.mean(0) for chunk in torch.split(feats, counts)])
    logits = F.linear(pooled, T["head.weight"], T["head.bias"])
    return F.cross_entropy(logits, labels)


def main():
    os.makedirs(OUT, exist_ok=True)
    gen = torch.Generator().manual_seed(20261125)
    P = make_params(gen)
    T = make_trainables(gen)
    n = sum(t * h * w for t, h, w in GRIDS)
    pixel_values = ((torch.rand(n, CFG["cin"] * CFG["tp"] * CFG["patch"] ** 2, generator=gen) * 2 - 1) * 1.5).float()
    labels = torch.tensor(LABELS)

    save_safetensors(os.path.join(OUT, "weights.safetensors"), P)
    init = {k: v for k, v in T.items() if not k.startswith("surgery.")}
    init.update({k[len("surgery."):]: v for k, v in T.items() if k.startswith("surgery.")})
    save_safetensors(os.path.join(OUT, "init.safetensors"), init)
    np.save(os.path.join(OUT, "pixel_values.npy"), pixel_values.numpy().astype(np.float32))
    np.save(os.path.join(OUT, "image_grid_thw.npy"), np.array(GRIDS, dtype=np.int64))
    np.save(os.path.join(OUT, "labels.npy"), np.array(LABELS, dtype=np.int64))

    with torch.no_grad():
        out = tower(P, pixel_values, GRIDS)
    np.save(os.path.join(OUT, "tower_out.npy"), out.numpy().astype(np.float32))

    def leaf(t):
        return t.clone().requires_grad_(True)

    # surgery: the replaced layer and the head train; gradients flow through nothing frozen below
    Ps = dict(P)
    Ps["visual.merger.mlp.2.weight"] = leaf(init["visual.merger.mlp.2.weight"])
    Ps["visual.merger.mlp.2.bias"] = leaf(init["visual.merger.mlp.2.bias"])
    Th = {"head.weight": leaf(T["head.weight"]), "head.bias": leaf(T["head.bias"])}
    loss = head_loss(Th, tower(Ps, pixel_values, GRIDS), GRIDS, labels)
    loss.backward()
    grads = {"loss": loss.detach().reshape(1)}
    for name in ("visual.merger.mlp.2.weight", "visual.merger.mlp.2.bias"):
        grads["grad." + name] = Ps[name].grad
    for name, t in Th.items():
        grads["grad." + name] = t.grad
    save_safetensors(os.path.join(OUT, "expected_surgery.safetensors"), grads)

    # detach: adapter + head on the tower's output, no gradient into the tower
    Th = {"head.weight": leaf(T["head.weight"]), "head.bias": leaf(T["head.bias"])}
    aw, ab = leaf(T["adapter.weight"]), leaf(T["adapter.bias"])
    feats = F.linear(out.detach(), aw, ab)
    loss = head_loss(Th, feats, GRIDS, labels)
    loss.backward()
    grads = {"loss": loss.detach().reshape(1), "grad.adapter.weight": aw.grad, "grad.adapter.bias": ab.grad}
    for name, t in Th.items():
        grads["grad." + name] = t.grad
    save_safetensors(os.path.join(OUT, "expected_detach.safetensors"), grads)

    # lora on the merger's first Linear and block 1's qkv
    lora = {tgt: (leaf(T[f"{tgt}.lora_A.weight"]), leaf(T[f"{tgt}.lora_B.weight"])) for tgt in LORA_TARGETS}
    Th = {"head.weight": leaf(T["head.weight"]), "head.bias": leaf(T["head.bias"])}
    loss = head_loss(Th, tower(P, pixel_values, GRIDS, lora), GRIDS, labels)
    loss.backward()
    grads = {"loss": loss.detach().reshape(1)}
    for tgt, (a, b) in lora.items():
        grads[f"grad.{tgt}.lora_A.weight"] = a.grad
        grads[f"grad.{tgt}.lora_B.weight"] = b.grad
    for name, t in Th.items():
        grads["grad." + name] = t.grad
    save_safetensors(os.path.join(OUT, "expected_lora.safetensors"), grads)
    print("fixtures written to", OUT)


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
