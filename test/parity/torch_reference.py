#!/usr/bin/env python3
"""PyTorch reference for the webomni parity tests (Debian's python3-torch, CPU).

Reads a model config + batch (JSON) and initial weights (safetensors written by webomni),
runs the same decoder-only LM, and writes the loss, every parameter's gradient and the
weights after N AdamW steps to a safetensors file for the test to compare.

The safetensors reader/writer is written out here (a few lines) so no extra package is
needed.
"""
import json
import struct
import sys

import torch
import torch.nn.functional as F

DT = {"F32": torch.float32, "F64": torch.float64, "I32": torch.int32, "F16": torch.float16}


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    base = 8 + n
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        t = torch.frombuffer(bytearray(data[base + b : base + end]), dtype=DT[e["dtype"]]).reshape(e["shape"])
        out[name] = t.clone()
    return out


def write_safetensors(path, tensors, metadata):
    header = {"__metadata__": metadata}
    blobs = []
    off = 0
    for name, t in tensors.items():
        t = t.detach().contiguous().to(torch.float32)
        raw = t.numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def layer_norm(x, w, b, eps):
    return F.layer_norm(x, (x.shape[-1],), w, b, eps)


def rope(x, pos, theta):
    # x: [T, H, D]; rotate-half convention (Llama / Hugging Face).
    d = x.shape[-1]
    inv = theta ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
    ang = pos.to(torch.float64)[:, None] * inv[None, :]
    cos = torch.cat([ang.cos(), ang.cos()], -1).to(x.dtype)[:, None, :]
    sin = torch.cat([ang.sin(), ang.sin()], -1).to(x.dtype)[:, None, :]
    x1, x2 = x[..., : d // 2], x[..., d // 2 :]
    return x * cos + torch.cat([-x2, x1], -1) * sin


def attention(q, k, v, cu, causal):
    # q [T, Hq, D], k/v [T, Hkv, D]; documents given by cu_seqlens never see each other.
    T, Hq, D = q.shape
    Hkv = k.shape[1]
    rep = Hq // Hkv
    k = k.repeat_interleave(rep, dim=1)
    v = v.repeat_interleave(rep, dim=1)
    doc = torch.zeros(T, dtype=torch.long)
    for i in range(len(cu) - 1):
        doc[cu[i] : cu[i + 1]] = i
    mask = doc[:, None] == doc[None, :]
    if causal:
        mask = mask & (torch.arange(T)[:, None] >= torch.arange(T)[None, :])
    s = torch.einsum("thd,shd->hts", q, k) / (D ** 0.5)
    s = s.masked_fill(~mask[None], float("-inf"))
    p = torch.softmax(s, -1)
    return torch.einsum("hts,shd->thd", p, v)


def forward(params, cfg, batch):
    ids = torch.tensor(batch["ids"], dtype=torch.long)
    pos = torch.tensor(batch["positions"], dtype=torch.long)
    tgt = torch.tensor(batch["targets"], dtype=torch.long)
    cu = batch["cu_seqlens"]
    hd = cfg["dim"] // cfg["heads"]
    eps = cfg["norm_eps"]
    norm = (lambda x, n: rms_norm(x, params[n + ".weight"], eps)) if cfg["norm"] == "rmsnorm" else (
        lambda x, n: layer_norm(x, params[n + ".weight"], params[n + ".bias"], eps))
    h = params["embed_tokens.weight"][ids]
    T = h.shape[0]
    for i in range(cfg["layers"]):
        p = f"layers.{i}."
        x = norm(h, p + "attn_norm")
        q = (x @ params[p + "attn.q_proj.weight"].T).reshape(T, cfg["heads"], hd)
        k = (x @ params[p + "attn.k_proj.weight"].T).reshape(T, cfg["kv_heads"], hd)
        v = (x @ params[p + "attn.v_proj.weight"].T).reshape(T, cfg["kv_heads"], hd)
        q, k = rope(q, pos, cfg["rope_theta"]), rope(k, pos, cfg["rope_theta"])
        a = attention(q, k, v, cu, True).reshape(T, cfg["heads"] * hd)
        h = h + a @ params[p + "attn.o_proj.weight"].T
        x = norm(h, p + "mlp_norm")
        if cfg["mlp"] == "swiglu":
            m = F.silu(x @ params[p + "mlp.gate_proj.weight"].T) * (x @ params[p + "mlp.up_proj.weight"].T)
        else:
            m = F.gelu(x @ params[p + "mlp.up_proj.weight"].T)
        h = h + m @ params[p + "mlp.down_proj.weight"].T
    h = norm(h, "norm")
    head = params["embed_tokens.weight"] if cfg["tie_embeddings"] else params["lm_head.weight"]
    logits = h @ head.T
    return F.cross_entropy(logits, tgt, ignore_index=-100, reduction="mean")


def main():
    cfg_path, weights_path, out_path = sys.argv[1:4]
    with open(cfg_path) as f:
        spec = json.load(f)
    cfg, batch, opt = spec["model"], spec["batch"], spec["adamw"]
    dtype = torch.float64 if spec.get("float64") else torch.float32
    params = {k: v.to(dtype).requires_grad_(True) for k, v in read_safetensors(weights_path).items()}
    loss = forward(params, cfg, batch)
    loss.backward()
    out = {f"grad.{k}": v.grad.clone() for k, v in params.items()}
    losses = [loss.item()]
    optim = torch.optim.AdamW(list(params.values()), lr=opt["lr"], betas=tuple(opt["betas"]), eps=opt["eps"],
                              weight_decay=opt["weight_decay"])
    optim.step()
    for _ in range(opt["steps"] - 1):
        optim.zero_grad()
        loss = forward(params, cfg, batch)
        loss.backward()
        losses.append(loss.item())
        optim.step()
    for k, v in params.items():
        out[f"after.{k}"] = v
    write_safetensors(out_path, out, {"losses": json.dumps(losses), "torch": torch.__version__})


if __name__ == "__main__":
    main()
