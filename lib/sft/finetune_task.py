"""The one fine-tuning task every method of the PEFT sections shares: questions about the fact
world, asked and answered in the chat format.

Book: seed-9, seed-10, seed-11, seed-12.

The book's tiny LM read the world of :func:`lib.data.make_world` (seed 0) during pretraining, in
plain text and in a ``Q: … / A: …`` format, but it has never seen a chat: asked in ChatML
(:mod:`lib.sft.chat`) it answers nothing useful. The task: teach it to answer in the chat format
from a *training* set of facts, and measure it on *held-out* facts whose questions it never saw
in that format — the knowledge must come from pretraining, the format from fine-tuning.

* :func:`fact_chat_task` splits the world's 248 facts (40 people × 6 relations + 8 cities) into
  train / held-out sets from a fixed task seed (the split is part of the task, not of a run).
* :func:`examples` turns facts into ``(prompt_ids, completion_ids)`` pairs for
  :func:`lib.align.sft.sft_train` (completion = the answer sentence and ``<|im_end|>``).
* :func:`is_correct` is the verifier: the reply must name the right value and no other value of
  the same kind (another city, another job, …).
* :func:`accuracy` answers every question of a split greedily and returns the share verified.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np

from lib.data.world import COLOURS, JOBS, PETS, REGIONS, Fact, World, make_world

#: Seed of the train / held-out split (fixed: the split is the task's definition).
TASK_SEED = 13
#: The world the shipped tiny-lm was pretrained on (``lib.data.build_corpus(0)``).
WORLD_SEED = 0


@dataclasses.dataclass(frozen=True)
class FactChatTask:
    """The world, and the facts whose chat questions are trained on / held out."""

    world: World
    train: tuple[Fact, ...]
    held_out: tuple[Fact, ...]
    seed: int

    def split(self, name: str) -> tuple[Fact, ...]:
        if name not in ("train", "held_out"):
            raise ValueError(f"split must be 'train' or 'held_out', got {name!r}")
        return getattr(self, name)

    def describe(self) -> dict:
        return {
            "builder": "lib.sft.finetune_task.fact_chat_task",
            "seed": self.seed,
            "world_seed": self.world.seed,
            "train": len(self.train),
            "held_out": len(self.held_out),
        }


def fact_chat_task(
    seed: int = TASK_SEED, held_out_fraction: float = 0.3, world: World | None = None
) -> FactChatTask:
    """Split every fact of ``world`` (default ``make_world(WORLD_SEED)``) into train and held-out,
    stratified by relation so both sets ask every kind of question."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    if not 0 < held_out_fraction < 1:
        raise ValueError(f"held_out_fraction must be in (0, 1), got {held_out_fraction!r}")
    world = world if world is not None else make_world(WORLD_SEED)
    if not isinstance(world, World):
        raise TypeError(f"world must be a lib.data.World, got {type(world).__name__}")
    rng = np.random.default_rng(int(seed))
    facts = world.facts()
    train, held = [], []
    for rel in sorted({f.relation for f in facts}):
        group = [f for f in facts if f.relation == rel]
        order = rng.permutation(len(group))
        k = max(1, int(round(held_out_fraction * len(group))))
        held += [group[i] for i in sorted(order[:k])]
        train += [group[i] for i in sorted(order[k:])]
    return FactChatTask(world, tuple(train), tuple(held), int(seed))


def messages(world: World, fact: Fact, with_answer: bool = True) -> list[dict]:
    """The chat of one fact: the user's question and (optionally) the assistant's answer
    sentence."""
    q, a = world.question(fact)
    out = [{"role": "user", "content": q}]
    if with_answer:
        out.append({"role": "assistant", "content": a})
    return out


def prompt_ids(tokenizer, world: World, fact: Fact) -> list[int]:
    """Token ids of the question followed by the generation prompt ``<|im_start|>assistant\\n``."""
    from lib.sft.chat import encode_chat

    return encode_chat(tokenizer, messages(world, fact, False), add_generation_prompt=True)[0]


def examples(
    tokenizer, task: FactChatTask, split: str = "train"
) -> list[tuple[list[int], list[int]]]:
    """``(prompt_ids, completion_ids)`` of every fact of ``split``: the prompt up to the answer, the
    completion = answer tokens + ``<|im_end|>`` (the trained tokens of
    :func:`lib.sft.chat.encode_chat`).
    """
    from lib.sft.chat import encode_chat

    out = []
    for f in task.split(split):
        ids, mask = encode_chat(tokenizer, messages(task.world, f))
        first = mask.index(1)
        last = len(mask) - mask[::-1].index(1)
        out.append((ids[:first], ids[first:last]))
    return out


def _candidates(world: World, relation: str) -> set[str]:
    if relation == "city":
        return set(world.cities)
    if relation == "friend":
        return set(world.people)
    if relation == "age":
        return {str(a) for a in range(0, 130)}
    return set({"job": JOBS, "pet": PETS, "colour": COLOURS, "region": REGIONS}[relation])


def is_correct(world: World, fact: Fact, reply: str) -> bool:
    """True when ``reply`` names ``fact.value`` and no other value of the same relation (the
    subject's own name is allowed in a reply about a friend)."""
    if not isinstance(reply, str):
        raise TypeError(f"reply must be a str, got {type(reply).__name__}")
    if not isinstance(fact, Fact):
        raise TypeError(f"fact must be a lib.data Fact, got {type(fact).__name__}")
    words = set(re.findall(r"[A-Za-z]+|\d+", reply))
    named = (words & _candidates(world, fact.relation)) - {fact.subject}
    return named == {fact.value}


def accuracy(
    model,
    tokenizer,
    task: FactChatTask,
    split: str = "held_out",
    max_new_tokens: int = 16,
    return_hits: bool = False,
):
    """Share of ``split``'s questions answered correctly by greedy decoding (stopping at
    ``<|im_end|>``); with ``return_hits`` also the per-question bool list."""
    import torch

    from lib.llm.generate import left_pad
    from lib.llm.generate import generate

    facts = task.split(split)
    prompts = [prompt_ids(tokenizer, task.world, f) for f in facts]
    stop = tokenizer.im_end_id
    hits = []
    with torch.no_grad():
        for s in range(0, len(prompts), 64):
            ids, attn = left_pad(prompts[s : s + 64], stop)
            out = generate(
                model,
                ids.to(model.device),
                max_new_tokens,
                eos_token_id=stop,
                attention_mask=attn.to(model.device),
            )
            for k, row in enumerate(out[:, ids.shape[1] :].tolist()):
                text = tokenizer.decode(row, skip_special_tokens=True)
                hits.append(is_correct(task.world, facts[s + k], text.split("\n")[0]))
    acc = float(np.mean(hits))
    return (acc, hits) if return_hits else acc


__all__ = [
    "TASK_SEED",
    "WORLD_SEED",
    "FactChatTask",
    "fact_chat_task",
    "messages",
    "prompt_ids",
    "examples",
    "is_correct",
    "accuracy",
]
