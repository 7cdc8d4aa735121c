"""Part 10's speed claims as ratios: each technique of the optimisation map against its baseline,
on the same machine, in the same run, as the median over interleaved rounds.

    python bench/bench_efficiency.py            # writes bench/results/efficiency.json
    python bench/bench_efficiency.py --quick    # fewer rounds

The notebooks show these timings on the reader's machine and never assert them; this script
records them where speed belongs, as ratios, with the machine and its load:

* batching: greedy decoding tokens/s at batch 16 vs batch 1 (lib.llm.efficiency.decode_throughput);
* KV cache: 64 new tokens after a 64-token prompt, recompute time / cache time (cache_vs_recompute);
* bf16 autocast on CPU: fp32 step time / bf16 step time (autocast_step), and the loss difference;
* torch.compile of one decoder block: eager / compiled steady state, and the first call's time;
* activation checkpointing: step time with every block recomputed / without (lib.llm.memory);
* RMSNorm vs LayerNorm (torch's modules, width 128): LayerNorm time / RMSNorm time.

Every round measures both contenders back to back (in alternating order); a ratio is computed per
round and the median reported, which cancels most of a shared machine's slow drift.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import benchmeta  # noqa: F401  (puts the book's root on sys.path)
import torch

from lib.llm import efficiency, memory
from lib.llm.checkpoint import load_model
from lib.llm.norms import time_per_call


def _paired(a, b, rounds: int) -> dict:
    """Time ``a()`` and ``b()`` back to back ``rounds`` times (order alternating);
    the per-round ratio t_a / t_b and its median."""
    ta, tb = [], []
    for r in range(rounds):
        order = ((a, ta), (b, tb)) if r % 2 == 0 else ((b, tb), (a, ta))
        for fn, sink in order:
            t0 = time.perf_counter()
            fn()
            sink.append(time.perf_counter() - t0)
    ratios = [x / y for x, y in zip(ta, tb)]
    return {"a_s": ta, "b_s": tb, "ratios": ratios, "median_ratio": statistics.median(ratios)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=str(benchmeta.ROOT / "bench" / "results" / "efficiency.json"))
    args = ap.parse_args(argv)
    rounds = 3 if args.quick else 7
    torch.set_num_threads(1)
    torch.manual_seed(0)
    head = benchmeta.header(sys.argv)
    model = load_model("tiny-lm").eval()
    V = model.config.vocab_size
    prompts = torch.randint(0, V, (16, 16))
    results = {}

    from lib.llm.generate import generate
    new = 32
    r = _paired(lambda: generate(model, prompts[:1], new), lambda: generate(model, prompts, new), rounds)
    # tokens/s at batch 16 over batch 1 = (16 * new / t16) / (new / t1) = 16 * t1 / t16
    results["batching_16_vs_1"] = {"what": "greedy decoding tokens/s, batch 16 / batch 1 (32 new tokens)",
                                   "median_ratio": 16 * r["median_ratio"],
                                   "ratios": [16 * x for x in r["ratios"]]}

    long_prompt = torch.randint(0, V, (1, 64))
    with torch.no_grad():
        same = torch.equal(generate(model, long_prompt, 64, use_cache=True),
                           generate(model, long_prompt, 64, use_cache=False))
        r = _paired(lambda: generate(model, long_prompt, 64, use_cache=False),
                    lambda: generate(model, long_prompt, 64, use_cache=True), rounds)
    results["kv_cache"] = {"what": "64 new tokens after 64, recompute time / KV-cache time",
                           "median_ratio": r["median_ratio"], "ratios": r["ratios"], "same_tokens": same}

    train = load_model("tiny-lm").train()
    x = torch.randint(0, V, (16, 128))
    y = torch.randint(0, V, (16, 128))

    def step(bf16: bool):
        train.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = train(x, targets=y)
        out.loss.backward()

    once = efficiency.autocast_step(train, x, y, repeats=1)
    r = _paired(lambda: step(False), lambda: step(True), rounds)
    results["bf16_autocast"] = {"what": "training step (16 x 128), fp32 time / bf16-autocast time",
                                "median_ratio": r["median_ratio"], "ratios": r["ratios"],
                                "loss_difference": once["bf16_loss"] - once["fp32_loss"]}

    block = model.layers[0]
    h = torch.randn(8, 128, model.config.d_model)
    cos = model.rope_cos[:128][None, None]
    sin = model.rope_sin[:128][None, None]
    comp = efficiency.compile_block(block, (h, cos, sin), repeats=5)
    compiled = torch.compile(block)
    with torch.no_grad():
        compiled(h, cos, sin)
        reps = 20
        r = _paired(lambda: [block(h, cos, sin) for _ in range(reps)],
                    lambda: [compiled(h, cos, sin) for _ in range(reps)], rounds)
    results["torch_compile_block"] = {"what": "one decoder block (8 x 128), eager time / compiled time",
                                      "median_ratio": r["median_ratio"], "ratios": r["ratios"],
                                      "first_call_s": comp["compile_s"], "max_diff": comp["max_diff"]}

    every_block = memory.recompute_plan(train, "full")
    r = _paired(lambda: memory.lm_loss_and_grads(train, x, y, every_block),
                lambda: memory.lm_loss_and_grads(train, x, y), rounds)
    results["activation_checkpointing"] = {"what": "training step, every block recomputed / plain",
                                           "median_ratio": r["median_ratio"], "ratios": r["ratios"]}

    z = torch.randn(64, 128, 128)
    ln, rms = torch.nn.LayerNorm(128), torch.nn.RMSNorm(128)
    with torch.no_grad():
        r = _paired(lambda: time_per_call(ln, z, reps=20), lambda: time_per_call(rms, z, reps=20), rounds)
    results["rmsnorm_vs_layernorm"] = {"what": "torch.nn.LayerNorm time / torch.nn.RMSNorm time (64 x 128 x 128)",
                                       "median_ratio": r["median_ratio"], "ratios": r["ratios"]}

    head["end"] = benchmeta.now()
    head["load_end"] = benchmeta.loadavg()
    record = {"benchmark": "efficiency", "header": head, "rounds": rounds, "threads": 1,
              "results": results}
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(record, f, indent=1)
    for name, res in results.items():
        print(f"{name:26s} {res['median_ratio']:6.2f}x  ({res['what']})")
    print("wrote", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
