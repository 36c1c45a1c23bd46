#!/usr/bin/env python3
"""PyTorch CPU peer of `npm run bench -- train-lm`.

argv[1] = JSON spec written by bench/train-lm.ts: model sizes, AdamW settings, warm-up and
measured step counts, and the exact packed Brown batches webomni trained on (ids, targets,
positions, cu_seqlens). Trains the same decoder LM (the forward of test/parity/
torch_reference.py, reused by import) with torch.optim.AdamW and global-norm clipping, one
optimizer step per batch, reading the loss back every step, on 2 threads. Prints one JSON line.

Attention: the reference builds a dense [H, T, T] block-diagonal mask over the whole packed
batch, which does (T / L)× the work of varlen attention. For a fair peer the attention is
replaced here (same math) by a chunked version: consecutive packed sequences are grouped
into chunks of at most maxSeqLen tokens, each chunk padded to maxSeqLen, and attention runs
batched over chunks with a causal + same-sequence mask.
"""
import json
import os
import sys
import time

try:
    import torch
    import torch.nn.functional as F
except ImportError as e:  # the bench prints this as the row's note
    print(json.dumps({"error": f"PyTorch is not installed ({e}); install Debian's python3-torch"}))
    sys.exit(0)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "test", "parity"))
import torch_reference as ref  # noqa: E402


def chunk_layout(cu, C):
    """Group sequences into chunks of ≤ C tokens: slot index per token, and per-chunk masks."""
    chunks = []  # list of (start, end) token ranges
    s = 0
    for i in range(1, len(cu)):
        if cu[i] - s > C:
            chunks.append((s, cu[i - 1]))
            s = cu[i - 1]
        if cu[i] - s > C:
            raise ValueError(f"sequence of {cu[i] - cu[i - 1]} tokens exceeds maxSeqLen {C}")
    chunks.append((s, cu[-1]))
    T = cu[-1]
    n = len(chunks)
    slot = torch.empty(T, dtype=torch.long)  # token -> flat slot in [n*C]
    gather = torch.zeros(n * C, dtype=torch.long)  # flat slot -> token (0 for padding)
    seq = torch.full((n, C), -1, dtype=torch.long)
    doc = torch.zeros(T, dtype=torch.long)
    for i in range(len(cu) - 1):
        doc[cu[i] : cu[i + 1]] = i
    for j, (a, b) in enumerate(chunks):
        idx = torch.arange(a, b)
        slot[a:b] = j * C + torch.arange(b - a)
        gather[j * C : j * C + (b - a)] = idx
        seq[j, : b - a] = doc[a:b]
    ar = torch.arange(C)
    causal = ar[:, None] >= ar[None, :]
    mask = (seq[:, :, None] == seq[:, None, :]) & (seq[:, :, None] >= 0) & causal[None]
    mask = mask | torch.eye(C, dtype=torch.bool)[None]  # padding rows see themselves (no NaN)
    return {"n": n, "slot": slot, "gather": gather, "mask": mask}


def make_attention(layout_of, C):
    def attention(q, k, v, cu, causal):
        lay = layout_of(cu)
        T, Hq, D = q.shape
        rep = Hq // k.shape[1]
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        n = lay["n"]
        # [n*C, H, D] -> [n, H, C, D]
        qc = q[lay["gather"]].reshape(n, C, Hq, D).transpose(1, 2)
        kc = k[lay["gather"]].reshape(n, C, Hq, D).transpose(1, 2)
        vc = v[lay["gather"]].reshape(n, C, Hq, D).transpose(1, 2)
        s = torch.matmul(qc, kc.transpose(-1, -2)) / (D ** 0.5)
        s = s.masked_fill(~lay["mask"][:, None], float("-inf"))
        o = torch.matmul(torch.softmax(s, -1), vc)  # [n, H, C, D]
        o = o.transpose(1, 2).reshape(n * C, Hq, D)
        return o[lay["slot"]]

    return attention


def sgemm_peak():
    """Best CPU sgemm GFLOP/s on this machine (PyTorch's BLAS, same threads)."""
    best = 0.0
    for n in (512, 1024):
        a, b = torch.randn(n, n), torch.randn(n, n)
        torch.matmul(a, b)
        reps = 3 if n == 1024 else 10
        for _ in range(3):
            t0 = time.perf_counter()
            for _ in range(reps):
                torch.matmul(a, b)
            dt = (time.perf_counter() - t0) / reps
            best = max(best, 2 * n ** 3 / dt / 1e9)
    return best


def main():
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    torch.set_num_threads(2)
    torch.manual_seed(0)
    m, tr = spec["model"], spec["train"]
    C = m["maxSeqLen"]
    cfg = {
        "dim": m["dim"], "layers": m["layers"], "heads": m["heads"], "kv_heads": m["kvHeads"],
        "norm_eps": m["normEps"], "norm": "rmsnorm", "mlp": "swiglu", "rope_theta": m["ropeTheta"],
        "tie_embeddings": False,
    }
    hd = m["dim"] // m["heads"]
    std = m["initStd"]
    shapes = {"embed_tokens.weight": (m["vocabSize"], m["dim"])}
    for i in range(m["layers"]):
        p = f"layers.{i}."
        shapes[p + "attn_norm.weight"] = (m["dim"],)
        shapes[p + "attn.q_proj.weight"] = (m["heads"] * hd, m["dim"])
        shapes[p + "attn.k_proj.weight"] = (m["kvHeads"] * hd, m["dim"])
        shapes[p + "attn.v_proj.weight"] = (m["kvHeads"] * hd, m["dim"])
        shapes[p + "attn.o_proj.weight"] = (m["dim"], m["heads"] * hd)
        shapes[p + "mlp_norm.weight"] = (m["dim"],)
        shapes[p + "mlp.gate_proj.weight"] = (m["ffnDim"], m["dim"])
        shapes[p + "mlp.up_proj.weight"] = (m["ffnDim"], m["dim"])
        shapes[p + "mlp.down_proj.weight"] = (m["dim"], m["ffnDim"])
    shapes["norm.weight"] = (m["dim"],)
    shapes["lm_head.weight"] = (m["vocabSize"], m["dim"])
    params = {
        k: (torch.ones(s) if k.endswith("norm.weight") else torch.randn(s) * std).requires_grad_(True)
        for k, s in shapes.items()
    }
    opt = torch.optim.AdamW(list(params.values()), lr=tr["lr"], betas=tuple(tr["betas"]), eps=tr["eps"],
                            weight_decay=tr["weightDecay"])

    # Layouts are host-side batch preparation (like webomni's loader): built once per batch.
    cache = {}

    def layout_of(cu):
        key = tuple(cu)
        if key not in cache:
            cache[key] = chunk_layout(cu, C)
        return cache[key]

    ref.attention = make_attention(layout_of, C)
    batches = [{"ids": b["ids"], "targets": b["targets"], "positions": b["positions"], "cu_seqlens": b["cuSeqlens"],
                "lr": lr} for b, lr in zip(spec["batches"], spec["lrs"])]
    for b in batches:
        layout_of(b["cu_seqlens"])

    def step(b):
        for g in opt.param_groups:
            g["lr"] = b["lr"]
        opt.zero_grad(set_to_none=True)
        loss = ref.forward(params, cfg, b)
        loss.backward()
        if tr["gradClip"] > 0:
            torch.nn.utils.clip_grad_norm_(list(params.values()), tr["gradClip"])
        opt.step()
        return loss.item()

    losses = []
    warm = min(spec.get("peerWarmup", spec["warmup"]), spec["warmup"])
    for b in batches[spec["warmup"] - warm : spec["warmup"]]:
        losses.append(step(b))
    measured = batches[spec["warmup"] : spec["warmup"] + spec["steps"]]
    max_s = spec.get("peerMaxSeconds", float("inf"))
    t0 = time.perf_counter()
    tokens = 0
    done = 0
    for b in measured:
        losses.append(step(b))
        tokens += len(b["ids"])
        done += 1
        if done >= 2 and time.perf_counter() - t0 > max_s:
            break
    dt = time.perf_counter() - t0
    peak = sgemm_peak()
    print(json.dumps({
        "peer": f"pytorch {torch.__version__} CPU, 2 threads",
        "tokensPerSecond": tokens / dt,
        "msPerStep": 1000 * dt / done,
        "losses": losses,
        "peakGflops": peak,
        "peakNote": "best of torch.matmul 512³/1024³ fp32",
        "notes": [
            f"{warm} warm-up + {done} measured steps; "
            "torch_reference.forward with varlen attention done as chunks of ≤ maxSeqLen tokens (padded, causal + "
            "same-sequence mask) instead of its dense T×T mask; torch.optim.AdamW + clip_grad_norm_, "
            "torch.set_num_threads(2), loss.item() every step",
        ],
    }))


if __name__ == "__main__":
    main()
