#!/usr/bin/python3
"""torch_train_step.py — the train_step benchmark's model in PyTorch, for comparison.

Same model, shapes and step as bench/train_step.c: a pre-LN transformer
encoder (d_model 256, 4 layers, 4 heads, d_ff 1024, tanh GELU, learned
positions, mean pooling, scalar head), 16 pairs = 32 sequences of 128 tokens
a step, vocabulary 8192, Bradley-Terry loss, AdamW, gradient clipping at 1.0.
Runs on CPU at each thread count given (default: 1 and every core) and prints
pairs/s and GFLOP/s (the same FLOP count as train_step: matmuls and
attention, forward and backward) for each, then one JSON line per count.

    /usr/bin/python3 bench/torch_train_step.py [--steps N] [--threads 1,2]

Debian's python3-torch (1.13) does its matmuls through the system BLAS, so
OpenBLAS's kernel choice applies: run with OPENBLAS_CORETYPE=Haswell (or the
kernel rewire's rw_blas_setup picks) to compare like with like.
"""
import argparse
import json
import math
import os
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

V, T, C, L, NH, FF, PAIRS = 8192, 128, 256, 4, 4, 1024, 16


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1 = nn.LayerNorm(C)
        self.qkv = nn.Linear(C, 3 * C)
        self.proj = nn.Linear(C, C)
        self.ln2 = nn.LayerNorm(C)
        self.fc = nn.Linear(C, FF)
        self.fcproj = nn.Linear(FF, C)

    def forward(self, x):
        B = x.shape[0]
        q, k, v = self.qkv(self.ln1(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, NH, C // NH).transpose(1, 2) for t in (q, k, v))
        att = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(C // NH), dim=-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, C)
        x = x + self.proj(y)
        return x + self.fcproj(F.gelu(self.fc(self.ln2(x)), approximate="tanh"))


class RewardModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.wte = nn.Embedding(V, C)
        self.wpe = nn.Embedding(T, C)
        self.blocks = nn.ModuleList(Block() for _ in range(L))
        self.lnf = nn.LayerNorm(C)
        self.head = nn.Linear(C, 1)

    def forward(self, ids):
        x = self.wte(ids) + self.wpe(torch.arange(T))
        for b in self.blocks:
            x = b(x)
        return self.head(self.lnf(x).mean(dim=1)).squeeze(-1)


def step_flops(B):
    n = B * T
    per_layer = 2 * n * (4 * C * C) + 4 * B * T * T * C + 2 * n * 2 * C * FF
    return 3.0 * (L * per_layer + 2 * B * C)


def run(threads, steps):
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    model = RewardModel()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)
    ids = torch.randint(3, V, (2 * PAIRS, T))
    times = []
    for i in range(steps + 3):
        t0 = time.perf_counter()
        r = model(ids)
        loss = F.softplus(-(r[0::2] - r[1::2])).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if i >= 3:
            times.append(time.perf_counter() - t0)
    times.sort()
    median, best = times[len(times) // 2], times[0]
    flops = step_flops(2 * PAIRS)
    return {
        "bench": "torch_train_step",
        "torch": torch.__version__,
        "threads": threads,
        "pairs_per_s": PAIRS / median,
        "pairs_per_s_best": PAIRS / best,
        "gflops": flops / median * 1e-9,
        "gflops_best": flops / best * 1e-9,
        "step_ms": median * 1e3,
        "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE", ""),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", default="1,%d" % os.cpu_count())
    args = ap.parse_args()
    counts = sorted({int(t) for t in args.threads.split(",")})
    results = [run(n, args.steps) for n in counts]
    for r in results:
        print("torch %s, %d threads: %.1f pairs/s median (%.1f best), %.1f GFLOP/s median"
              % (r["torch"], r["threads"], r["pairs_per_s"], r["pairs_per_s_best"], r["gflops"]))
    for r in results:
        print(json.dumps(r))


if __name__ == "__main__":
    main()
