#!/usr/bin/env python3
"""The one table of every artefact the book ships, and the commands that regenerate them.

``make checkpoints`` runs this script: each row in order (later rows start from earlier ones:
the tokenizer before the models, ``tiny-lm`` before its fine-tuned children). Every command writes
its sidecar (``meta.json``, or the tokenizer's/VLM's own JSON) recording the command, the commit
and the machine (:mod:`lib.provenance`) and its metrics; ``tests/test_checkpoint_table.py`` checks
that every shipped artefact has a row here and that its sidecar names the row's command.

A CPU rerun gives equivalent, not bit-identical, weights (another CPU or thread count is another
random draw), and the notebooks' self-checks are written to hold for such reruns.

    python tools/checkpoints.py --list                  # the table
    python tools/checkpoints.py                         # regenerate everything (long)
    python tools/checkpoints.py --only tiny-lm-tools    # one row (and nothing that depends on it)
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import pathlib
import shlex
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent


@dataclasses.dataclass(frozen=True)
class Artefact:
    name: str                 # short name (the folder under data/checkpoints, or "tokenizer")
    outputs: tuple            # paths it writes, relative to the book's root
    sidecar: str              # the JSON that records how it was made
    commands: tuple           # shell-free argv strings, run in order ("python" = this interpreter)
    threads: int = 1          # OMP/torch threads (1 unless the run was made for 2)
    what: str = ""

    def argvs(self, device: str = "cpu") -> list[list[str]]:
        out = []
        for cmd in self.commands:
            argv = shlex.split(cmd.replace("{device}", device))
            if argv[0] == "python":
                argv[0] = sys.executable
            out.append(argv)
        return out


CK = "data/checkpoints"
TABLE: tuple[Artefact, ...] = (
    Artefact("tokenizer", ("data/tokenizer",), "data/tokenizer/tokenizer.meta.json",
             ("python -m lib.llm.tokenizer",), what="byte-level BPE tokenizer of the book corpus"),
    Artefact("tiny-lm", (f"{CK}/tiny-lm",), f"{CK}/tiny-lm/meta.json",
             ("python -m lib.llm.pretrain --preset tiny-lm",), threads=2,
             what="the pretrained dense tiny LM (Part 2)"),
    Artefact("tiny-lm-moe", (f"{CK}/tiny-lm-moe",), f"{CK}/tiny-lm-moe/meta.json",
             ("python -m lib.llm.pretrain --preset tiny-lm-moe",), threads=2,
             what="the pretrained mixture-of-experts twin (Part 2)"),
    Artefact("tiny-lm-arith-sft", (f"{CK}/tiny-lm-arith-sft",), f"{CK}/tiny-lm-arith-sft/meta.json",
             ("python -m lib.align.sft --no-progress",),
             what="cold-start SFT on arithmetic facts and worked solutions (Parts 3, 5, 7)"),
    Artefact("dpo", (f"{CK}/dpo-preference-pairs", f"{CK}/tiny-lm-arith-dpo", f"{CK}/tiny-lm-arith-dpo-sft",
                     f"{CK}/dpo-beta-sweep"), f"{CK}/dpo-beta-sweep/meta.json",
             ("python -m lib.align.dpo --no-progress",),
             what="Part 4: preference pairs, plain DPO and DPO + SFT models, the beta sweep"),
    Artefact("reward-model", (f"{CK}/reward-model",), f"{CK}/reward-model/meta.json",
             ("python -m lib.align.reward --no-progress",),
             what="Part 8: the reward model (cold start + scalar head) on verifier-labelled pairs"),
    Artefact("peft-comparison", (f"{CK}/peft-comparison",), f"{CK}/peft-comparison/meta.json",
             ("python -m lib.peft.compare",),
             what="seven fine-tuning methods x 3 seeds, 300 steps each (Part 3)"),
    Artefact("tiny-lm-arith-direct", (f"{CK}/tiny-lm-arith-direct",), f"{CK}/tiny-lm-arith-direct/meta.json",
             ("python -m lib.align.sft --no-progress --direct",),
             what="the direct-answer twin of the cold-start model (Part 5, chain of thought)"),
    Artefact("tiny-lm-rag", (f"{CK}/tiny-lm-rag",), f"{CK}/tiny-lm-rag/meta.json",
             ("python -m lib.rag train --no-progress",
              "python -m lib.rag train --init tiny-lm-rag --steps 1000 --no-progress"),
             what="the retrieval-augmented reader, two stages (Part 5)"),
    Artefact("tiny-lm-tools", (f"{CK}/tiny-lm-tools",), f"{CK}/tiny-lm-tools/meta.json",
             ("python -m lib.toolcall train --no-progress",),
             what="the tool-calling model (Part 5)"),
    Artefact("dqn-cartpole", (f"{CK}/dqn-cartpole",), f"{CK}/dqn-cartpole/meta.json",
             (f"python -m lib.rl.dqn --make-checkpoint {CK}/dqn-cartpole",),
             what="DQN on CartPole-v1 (Part 6)"),
    Artefact("marl-spread", (f"{CK}/marl-spread",), f"{CK}/marl-spread/meta.json",
             (f"python -m lib.rl.marl --make-checkpoint {CK}/marl-spread --seeds 0 1 2 3 4",),
             what="MADDPG and independent DDPG on simple_spread, 5 seeds (Part 6)"),
    Artefact("vlm", (f"{CK}/vlm",), f"{CK}/vlm/vlm.json",
             ("python -m lib.llm.vlm --steps 4000 --lr 0.001 --vision-layers 1 --lm-layers 2 "
              "--batch-size 64 --n-train 6000 --device {device}",),
             what="the tiny vision-language model (Part 2; trained on a GPU, hours on a CPU)"),
    Artefact("rlhf-kl-sweep", (f"{CK}/rlhf-kl-sweep",), f"{CK}/rlhf-kl-sweep/meta.json",
             ("python -m lib.align.rlhf --no-progress",),
             what="Part 8: PPO-RLHF KL sweep (3 x 2 seeds), rejection sampling, the five-method table "
                  "(needs reward-model and the dpo row)"),
    Artefact("component-sweep", (f"{CK}/component-sweep",), f"{CK}/component-sweep/meta.json",
             ("python -m lib.llm.components",),
             what="ReLU/GELU/SwiGLU FFNs and pre/post-norm depths x 4 seeds (Part 10)"),
    Artefact("variant-positions", (f"{CK}/variant-positions",), f"{CK}/variant-positions/meta.json",
             ("python -m lib.llm.variants --sweep variant-positions --no-progress",),
             what="RoPE / ALiBi / learned / no positions, 4 seeds x 300 steps, losses to 256 tokens (Part 10)"),
    Artefact("variant-attention", (f"{CK}/variant-attention",), f"{CK}/variant-attention/meta.json",
             ("python -m lib.llm.variants --sweep variant-attention --no-progress",),
             what="MHA / GQA / MQA / MLA, 4 seeds x 300 steps (Part 10)"),
    Artefact("step-search", (f"{CK}/step-search",), f"{CK}/step-search/meta.json",
             ("python -m lib.align.step_search",),
             what="Part 9: MCTS over reasoning steps vs sampling, accuracy against model calls on "
                  "200 held-out questions (needs tiny-lm-arith-sft)"),
    Artefact("bestofn-pool", (f"{CK}/bestofn-pool",), f"{CK}/bestofn-pool/meta.json",
             ("python -m lib.align.bestofn",),
             what="Part 9: 32 sampled answers x 200 held-out questions with reward-model scores "
                  "(needs tiny-lm-arith-sft and reward-model)"),
    Artefact("prm", (f"{CK}/prm",), f"{CK}/prm/meta.json",
             ("python -m lib.align.prm --no-progress",),
             what="Part 9: ORM, PRM (exact step labels), PRM (Math-Shepherd labels) on the policy's "
                  "rl_train solutions (needs tiny-lm-arith-sft)"),
    Artefact("cot-distill", (f"{CK}/cot-distill",), f"{CK}/cot-distill/meta.json",
             ("python -m lib.align.cot_distill --no-progress",),
             what="Part 9: CoT distillation, teacher traces filtered by the verifier, 5 students' "
                  "held-out hits + the filtered student (needs tiny-lm, tiny-lm-arith-sft)"),
)


def by_name() -> dict[str, Artefact]:
    return {a.name: a for a in TABLE}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--list", action="store_true", help="print the table and exit")
    ap.add_argument("--only", nargs="+", metavar="NAME", help="regenerate only these rows")
    args = ap.parse_args(argv)
    names = by_name()
    if args.only:
        unknown = [n for n in args.only if n not in names]
        if unknown:
            ap.error(f"unknown artefact(s) {unknown}; known: {list(names)}")
    rows = [a for a in TABLE if not args.only or a.name in args.only]
    if args.list:
        for a in TABLE:
            print(f"{a.name:22s} {a.threads} thr  {' && '.join(a.commands)}")
            print(f"{'':22s} {a.what}; -> {', '.join(a.outputs)}")
        return 0
    sys.path.insert(0, str(ROOT))
    import lib

    device = lib.device().type
    total = time.perf_counter()
    for a in rows:
        env = dict(os.environ, OMP_NUM_THREADS=str(a.threads), MKL_NUM_THREADS=str(a.threads))
        t0 = time.perf_counter()
        for argv in a.argvs(device):
            print(f"[{a.name}] {' '.join(shlex.quote(x) for x in argv)}", flush=True)
            subprocess.run(argv, cwd=ROOT, env=env, check=True)
        print(f"[{a.name}] done in {time.perf_counter() - t0:.0f} s", flush=True)
    print(f"all {len(rows)} artefact(s) in {time.perf_counter() - total:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
