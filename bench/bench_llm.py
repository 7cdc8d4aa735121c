"""Benchmarks of the book's tiny LLM (lib.llm) against Hugging Face transformers, same weights, same run.

    python bench/bench_llm.py            # all three; add --quick for a shorter run
    python bench/bench_llm.py --profile  # and the per-op CPU time of a training step, both models

(a) training throughput (tokens/s, forward + backward + AdamW step) of lib's TinyLM vs transformers'
    LlamaForCausalLM at the shipped tiny-lm configuration;
(b) KV-cache decoding speedup vs no cache for 256 new tokens (context 1024: the tiny-lm weights with a
    longer RoPE table, prompt of 256 tokens);
(c) greedy generation tokens/s of lib.llm.generate vs transformers' generate on the same weights.
Measurements alternate between the two contenders (which one goes first alternates too); training
reports the median of the per-round ratios, which cancels most of a shared machine's slow drift.
The run is recorded in bench/results/llm.json (machine, commit, load, every round).
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from lib.llm.checkpoint import load_model  # noqa: E402
from lib.llm.export import hf_config_dict, to_hf_state_dict  # noqa: E402
from lib.llm.generate import generate  # noqa: E402
from lib.llm.model import TinyLM  # noqa: E402


def hf_twin(model):
    from transformers import LlamaConfig, LlamaForCausalLM
    d = {k: v for k, v in hf_config_dict(model.config).items() if k not in ("architectures", "model_type")}
    hf = LlamaForCausalLM(LlamaConfig(**d, attn_implementation="sdpa"))
    hf.load_state_dict(to_hf_state_dict(model), strict=False)
    hf.tie_weights()
    return hf


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    except OSError:
        commit = "?"
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = float("nan")
    return (f"commit {commit or '?'}, nproc {os.cpu_count()}, CPU {cpu}, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads), load average {load:.1f} at start")


def bench_training(lib_model, hf_model, batch=32, seq=128, steps=6, rounds=3):
    torch.manual_seed(0)
    x = torch.randint(0, lib_model.config.vocab_size, (batch, seq + 1))
    inp, tgt = x[:, :-1], x[:, 1:]

    def step_lib(opt):
        out = lib_model(inp, targets=tgt)
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(lib_model.parameters(), 1.0)
        opt.step()

    def step_hf(opt):
        out = hf_model(input_ids=x[:, :-1], labels=None)
        loss = torch.nn.functional.cross_entropy(out.logits.float().reshape(-1, out.logits.shape[-1]), tgt.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(hf_model.parameters(), 1.0)
        opt.step()

    res = {"lib": [], "hf": []}
    opts = {"lib": torch.optim.AdamW(lib_model.parameters(), lr=1e-4), "hf": torch.optim.AdamW(hf_model.parameters(), lr=1e-4)}
    fns = {"lib": step_lib, "hf": step_hf}
    lib_model.train()
    hf_model.train()
    for name in fns:  # warm-up
        fns[name](opts[name])
    for r in range(rounds):
        # alternate which contender goes first, so that a slow drift of the machine favours neither
        for name in (("lib", "hf") if r % 2 == 0 else ("hf", "lib")):
            t0 = time.perf_counter()
            for _ in range(steps):
                fns[name](opts[name])
            res[name].append(steps * batch * seq / (time.perf_counter() - t0))
    ratios = [a / b for a, b in zip(res["lib"], res["hf"])]
    out = {k: statistics.median(v) for k, v in res.items()}
    out.update(rounds=res, round_ratios=ratios, median_ratio=statistics.median(ratios))
    return out


def profile_training(lib_model, hf_model, batch=32, seq=128, steps=2, top=12):
    """Per-op self CPU time of ``steps`` training steps of each contender (torch.profiler)."""
    from torch.profiler import ProfilerActivity, profile

    torch.manual_seed(0)
    x = torch.randint(0, lib_model.config.vocab_size, (batch, seq + 1))
    inp, tgt = x[:, :-1], x[:, 1:]
    tables = {}
    for name, model in (("lib", lib_model), ("hf", hf_model)):
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

        def step():
            if name == "lib":
                loss = model(inp, targets=tgt).loss
            else:
                lg = model(input_ids=inp).logits
                loss = torch.nn.functional.cross_entropy(lg.float().reshape(-1, lg.shape[-1]), tgt.reshape(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()

        step()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(steps):
                step()
        rows = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
        tables[name] = [(e.key, e.self_cpu_time_total / 1e3 / steps, e.count // steps) for e in rows[:top]]
    return tables


@torch.no_grad()
def bench_kv_cache(model, prompt_len=256, new=256, rounds=2):
    torch.manual_seed(1)
    prompt = torch.randint(0, model.config.vocab_size, (1, prompt_len))
    generate(model, prompt, 4)
    t = {"cache": [], "nocache": []}
    outs = {}
    for _ in range(rounds):
        for name, use in (("cache", True), ("nocache", False)):
            t0 = time.perf_counter()
            outs[name] = generate(model, prompt, new, use_cache=use)
            t[name].append(time.perf_counter() - t0)
    same = torch.equal(outs["cache"], outs["nocache"])
    return {k: min(v) for k, v in t.items()}, same


@torch.no_grad()
def bench_generate(model, hf_model, prompt_len=32, new=200, rounds=3):
    torch.manual_seed(2)
    prompt = torch.randint(0, model.config.vocab_size, (1, prompt_len))
    mask = torch.ones_like(prompt)
    model.eval()
    hf_model.eval()
    run = {"lib": lambda: generate(model, prompt, new),
           "hf": lambda: hf_model.generate(prompt, attention_mask=mask, max_new_tokens=new, min_new_tokens=new,
                                           do_sample=False, pad_token_id=0)}
    for f in run.values():
        f()
    res = {"lib": [], "hf": []}
    outs = {}
    for _ in range(rounds):
        for name, f in run.items():
            t0 = time.perf_counter()
            outs[name] = f()
            res[name].append(new / (time.perf_counter() - t0))
    return {k: statistics.median(v) for k, v in res.items()}, torch.equal(outs["lib"], outs["hf"])


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--gen-threads", type=int, default=1,
                    help="torch threads for the decoding benchmarks (b, c): one-token steps are too small to "
                         "gain from threads, and spare threads only add contention on a shared CPU")
    ap.add_argument("--profile", action="store_true",
                    help="also print (and record) the per-op self CPU time of a training step for both")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "llm.json"),
                    help="the JSON record of this run ('' for none)")
    args = ap.parse_args(argv)
    print("# bench_llm:", machine())
    base = load_model("tiny-lm")
    cfg = base.config
    print(f"model: tiny-lm config (d_model {cfg.d_model}, {cfg.n_layers} layers, {cfg.n_heads}/{cfg.n_kv_heads} heads, "
          f"vocab {cfg.vocab_size}), {base.num_parameters():,} parameters, float32")

    lib_train = load_model("tiny-lm")
    hf_train = hf_twin(lib_train)
    tr = bench_training(lib_train, hf_train, steps=3 if args.quick else 4, rounds=5 if args.quick else 9)
    print(f"(a) training throughput, batch 32 x 128: lib {tr['lib']:,.0f} tok/s, transformers {tr['hf']:,.0f} tok/s "
          f"(medians); median of the per-round ratios {tr['median_ratio']:.2f}x "
          f"(rounds: {', '.join(f'{r:.2f}' for r in tr['round_ratios'])})  (goal >= 1.0x)")
    record = {"benchmark": "llm", "machine": machine(), "training": tr}
    if args.profile:
        tables = profile_training(lib_train, hf_train)
        record["profile_ms_per_step"] = tables
        for name, rows in tables.items():
            print(f"    per-op self CPU time, {name} (ms per step, calls per step):")
            for key, ms, calls in rows:
                print(f"      {key[:48]:48s} {ms:9.1f} ms  x{calls}")

    torch.set_num_threads(args.gen_threads)
    print(f"decoding benchmarks on {torch.get_num_threads()} thread(s)")
    long = TinyLM(cfg.replace(max_seq_len=1024))
    long.load_state_dict(base.state_dict())
    long.eval()
    t, same = bench_kv_cache(long, rounds=1 if args.quick else 2)
    print(f"(b) 256 new tokens after a 256-token prompt: no cache {t['nocache']:.2f} s, KV cache {t['cache']:.2f} s "
          f"-> speedup {t['nocache'] / t['cache']:.1f}x (goal >= 5x); identical tokens: {same}")

    hf_gen = hf_twin(base)
    g, same = bench_generate(base, hf_gen, rounds=2 if args.quick else 3)
    print(f"(c) greedy generation, 200 new tokens, batch 1: lib {g['lib']:,.0f} tok/s, transformers.generate "
          f"{g['hf']:,.0f} tok/s -> {g['lib'] / g['hf']:.2f}x (goal >= 1.0x); identical tokens: {same}")
    record.update(kv_cache={"seconds": t, "speedup": t["nocache"] / t["cache"]},
                  generate={"tokens_per_s": g, "ratio": g["lib"] / g["hf"], "identical": same})
    if args.out:
        import json
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(record, f, indent=1)
        print("wrote", args.out)


if __name__ == "__main__":
    main()
