#!/usr/bin/env python3
"""PyTorch reference for one webomni MoE layer (Debian's python3-torch, CPU).

Written the way Hugging Face MoE blocks (Mixtral / Qwen-MoE) are: router Linear, softmax,
torch.topk, optional renormalisation, a loop over experts with index_add_, plus an
always-active shared SwiGLU expert. Expert weights are stacked like webomni's
`experts.gate_up_proj` [E, 2F, D] and `experts.down_proj` [E, D, F].

Reads spec.json (routing options, loss weights) and weights.safetensors (x, the layer's
parameters, the upstream gradient G), computes
    y, aux = E * sum_e f_e * P_e  (f_e = tokens routed to e / (T*k)), z = mean(logsumexp^2)
and the gradients of  L = sum(G * y) + a * aux + b * z  for x and every parameter, and
writes them to out.safetensors.
"""
import json
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_reference import read_safetensors, write_safetensors  # noqa: E402


def moe(x, p, spec):
    T, D = x.shape
    E = p["gate.weight"].shape[0]
    k = spec["topK"]
    logits = x @ p["gate.weight"].t()
    if spec["scoring"] == "sigmoid":
        scores = torch.sigmoid(logits)
        probs = scores / scores.sum(-1, keepdim=True)
    else:
        scores = torch.softmax(logits, -1)
        probs = scores
    weights, idx = torch.topk(scores, k, dim=-1)
    if spec["renormalize"]:
        weights = weights / weights.sum(-1, keepdim=True)
    gate_up = p["experts.gate_up_proj"]
    down = p["experts.down_proj"]
    Fh = down.shape[2]
    y = torch.zeros_like(x)
    counts = torch.zeros(E)
    for e in range(E):
        tok, slot = torch.where(idx == e)
        counts[e] = tok.numel()
        if tok.numel() == 0:
            continue
        h = x[tok] @ gate_up[e].t()
        a = F.silu(h[:, :Fh]) * h[:, Fh:]
        out = (a @ down[e].t()) * weights[tok, slot, None]
        y = y.index_add(0, tok, out)
    if "shared_experts.gate_proj.weight" in p:
        g = x @ p["shared_experts.gate_proj.weight"].t()
        u = x @ p["shared_experts.up_proj.weight"].t()
        y = y + (F.silu(g) * u) @ p["shared_experts.down_proj.weight"].t()
    aux = E * torch.sum(counts / (T * k) * probs.mean(0))
    z = torch.logsumexp(logits, -1).pow(2).mean()
    return y, aux, z, counts, idx


def main():
    spec_path, weights_path, out_path = sys.argv[1:4]
    spec = json.load(open(spec_path))
    t = read_safetensors(weights_path)
    x = t.pop("x").requires_grad_(True)
    G = t.pop("G")
    params = {n: v.requires_grad_(True) for n, v in t.items()}
    y, aux, z, counts, idx = moe(x, params, spec)
    loss = (G * y).sum() + spec["auxWeight"] * aux + spec["zWeight"] * z
    loss.backward()
    out = {"y": y, "aux": aux.reshape(1), "z": z.reshape(1), "counts": counts, "idx": idx.to(torch.float32), "grad.x": x.grad}
    for n, v in params.items():
        out["grad." + n] = v.grad
    write_safetensors(out_path, out, {})


if __name__ == "__main__":
    main()
