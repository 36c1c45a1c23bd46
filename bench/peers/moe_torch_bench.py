#!/usr/bin/env python3
"""PyTorch CPU peer for `npm run bench -- moe`: forward + backward of one MoE SwiGLU layer
written the Hugging Face way (router Linear, softmax, topk, renormalise, loop over experts
with index_add_), loss = sum(g * y) + 0.01 * aux + 0.001 * z like webomni's bench.
Prints one JSON line: {"threads", "results": [{"case", "ms"}]} (best of reps after a warm-up).
"""
import json
import sys
import time

import torch
import torch.nn.functional as F


def layer(x, router, gate_up, down, k):
    T = x.shape[0]
    E = router.shape[0]
    Fh = down.shape[2]
    logits = x @ router.t()
    scores = torch.softmax(logits, -1)
    w, idx = torch.topk(scores, k, dim=-1)
    w = w / w.sum(-1, keepdim=True)
    y = torch.zeros_like(x)
    counts = torch.zeros(E)
    for e in range(E):
        tok, slot = torch.where(idx == e)
        counts[e] = tok.numel()
        if tok.numel() == 0:
            continue
        h = x[tok] @ gate_up[e].t()
        a = F.silu(h[:, :Fh]) * h[:, Fh:]
        y = y.index_add(0, tok, (a @ down[e].t()) * w[tok, slot, None])
    aux = E * torch.sum(counts / (T * k) * scores.mean(0))
    z = torch.logsumexp(logits, -1).pow(2).mean()
    return y, aux, z


def main():
    spec = json.loads(sys.argv[1])
    reps = spec.get("reps", 3)
    torch.manual_seed(0)
    results = []
    for c in spec["cases"]:
        T, D, E, k, Fh = c["T"], c["D"], c["E"], c["k"], c["F"]
        x = torch.randn(T, D, requires_grad=True)
        router = (torch.randn(E, D) / D**0.5).requires_grad_(True)
        gate_up = (torch.randn(E, 2 * Fh, D) / D**0.5).requires_grad_(True)
        down = (torch.randn(E, D, Fh) / Fh**0.5).requires_grad_(True)
        g = torch.randn(T, D)

        def step():
            for t in (x, router, gate_up, down):
                t.grad = None
            y, aux, z = layer(x, router, gate_up, down, k)
            ((g * y).sum() + 0.01 * aux + 0.001 * z).backward()

        step()
        best = float("inf")
        for _ in range(reps):
            t0 = time.perf_counter()
            step()
            best = min(best, time.perf_counter() - t0)
        results.append({"case": c["name"], "ms": best * 1000})
    print(json.dumps({"threads": torch.get_num_threads(), "results": results}))


if __name__ == "__main__":
    main()
