"""Bilingual phrases and chat-formatted instruction/response pairs.

:data:`PHRASES` are English/Chinese pairs so that Chinese tokenisation is part of the story;
:func:`chat_pairs` makes instruction/response pairs in a messages format for supervised
fine-tuning (the pretraining text uses a plain ``Q:``/``A:`` format instead).

Book: seed-5 (Chinese in the tokenizer), seed-8 (pretraining corpus), seed-15 (instruction data).
"""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from .arithmetic import arithmetic_problems
from .common import as_rng, check_count
from .world import World, make_world


#: English/Chinese phrase pairs.
PHRASES: tuple[tuple[str, str], ...] = (
    ("hello", "你好"), ("good morning", "早上好"), ("good night", "晚安"), ("thank you", "谢谢"),
    ("you are welcome", "不客气"), ("goodbye", "再见"), ("how are you", "你好吗"),
    ("I am fine", "我很好"), ("what is your name", "你叫什么名字"), ("my name is Mila", "我叫米拉"),
    ("I like tea", "我喜欢茶"), ("I like coffee", "我喜欢咖啡"), ("the sky is blue", "天空是蓝色的"),
    ("the grass is green", "草是绿色的"), ("the sun is hot", "太阳很热"), ("the moon is bright", "月亮很亮"),
    ("it is raining", "下雨了"), ("it is cold today", "今天很冷"), ("it is hot today", "今天很热"),
    ("I am hungry", "我饿了"), ("I am tired", "我累了"), ("let us go", "我们走吧"),
    ("see you tomorrow", "明天见"), ("happy birthday", "生日快乐"), ("happy new year", "新年快乐"),
    ("I love you", "我爱你"), ("where is the station", "车站在哪里"), ("how much is it", "多少钱"),
    ("please sit down", "请坐"), ("please wait", "请稍等"), ("I do not know", "我不知道"),
    ("I understand", "我明白了"), ("one", "一"), ("two", "二"), ("three", "三"), ("four", "四"),
    ("five", "五"), ("six", "六"), ("seven", "七"), ("eight", "八"), ("nine", "九"), ("ten", "十"),
    ("cat", "猫"), ("dog", "狗"), ("bird", "鸟"), ("fish", "鱼"), ("horse", "马"), ("rabbit", "兔子"),
    ("red", "红色"), ("blue", "蓝色"), ("green", "绿色"), ("yellow", "黄色"), ("black", "黑色"),
    ("white", "白色"), ("water", "水"), ("fire", "火"), ("mountain", "山"), ("river", "河"),
    ("city", "城市"), ("friend", "朋友"), ("teacher", "老师"), ("doctor", "医生"), ("book", "书"),
    ("language model", "语言模型"), ("machine learning", "机器学习"), ("reinforcement learning", "强化学习"),
    ("large language model", "大语言模型"), ("reward", "奖励"), ("policy", "策略"), ("token", "词元"),
)




def _fact_items(world: World, rng: np.random.Generator):
    facts = world._facts_cached()
    f = facts[int(rng.integers(len(facts)))]
    return f


def chat_pairs(n: int, seed=0, world: World | None = None,
               tasks: Sequence[str] = ("arithmetic", "arithmetic_direct", "fact", "translate", "describe"),
               exclude_expressions: Iterable[str] = ()) -> list[dict]:
    """``n`` instruction/response pairs for supervised fine-tuning.

    Each item is ``{"task": str, "messages": [{"role": "user", "content": ...},
    {"role": "assistant", "content": ...}]}`` (plus ``"problem"`` for arithmetic tasks, the
    :class:`ArithProblem`). Tasks: ``arithmetic`` (step by step), ``arithmetic_direct``
    (answer only), ``fact`` (a question about the world), ``translate`` (English <-> Chinese),
    ``describe`` (everything about one person).
    """
    n = check_count(n)
    rng = as_rng(seed)
    world = world if world is not None else make_world(0)
    known = {"arithmetic", "arithmetic_direct", "fact", "translate", "describe"}
    tasks = list(tasks)
    if not tasks or not set(tasks) <= known:
        raise ValueError(f"tasks must be a non-empty subset of {sorted(known)}, got {tasks}")
    seen = set(exclude_expressions)
    out = []
    for _ in range(n):
        task = tasks[int(rng.integers(len(tasks)))]
        item: dict = {"task": task}
        if task in ("arithmetic", "arithmetic_direct"):
            (p,) = arithmetic_problems(1, rng, min_ops=1, max_ops=3, exclude=seen)
            seen.add(p.expression)
            item["problem"] = p
            if task == "arithmetic":
                user = p.question + " Think step by step."
                bot = p.cot_answer
            else:
                user = p.question + " Give only the answer."
                bot = p.direct_answer
        elif task == "fact":
            f = _fact_items(world, rng)
            user, bot = world.question(f)
        elif task == "translate":
            en, zh = PHRASES[int(rng.integers(len(PHRASES)))]
            if rng.random() < 0.5:
                user, bot = f"Translate to Chinese: {en}", zh
            else:
                user, bot = f"Translate to English: {zh}", en
        else:  # describe
            name = list(world.people)[int(rng.integers(len(world.people)))]
            user, bot = f"Tell me about {name}.", world.document(name)
        item["messages"] = [{"role": "user", "content": user}, {"role": "assistant", "content": bot}]
        out.append(item)
    return out


__all__ = ["PHRASES", "chat_pairs"]
