"""The chat format of supervised fine-tuning: ChatML messages -> text -> token ids + a mask
of the tokens the model is trained to produce.

Book: seed-13 (token id <-> token table of a conversation), used by seed-14 (the loss),
seed-15 (instruction data), seed-16 (packing) and the fine-tuning task of seed-9 ... seed-12.

The format is the one the book's tokenizer ships (:meth:`lib.llm.tokenizer.BPETokenizer.
apply_chat_template`, ChatML)::

    <|im_start|>{role}\\n{content}<|im_end|>\\n          (one block per message)
    <|im_start|>assistant\\n                            (generation prompt, optional)

:func:`chat_segments` cuts the rendered text into pieces and marks which ones are *trained*:
an assistant message's content and its closing ``<|im_end|>`` (so the model learns to stop);
role headers, system and user turns and the newline after ``<|im_end|>`` are context only.
:func:`encode_chat` tokenizes the whole text once (so the ids equal ``tokenizer.encode`` of the
rendered text exactly) and marks a token as trained when its bytes overlap a trained piece —
the rule of ``transformers``' ``return_assistant_tokens_mask``. :data:`CHAT_TEMPLATE_JINJA` is
the same template in Jinja with ``{% generation %}`` tags, for a Hugging Face export
(``lib.llm.export.export_hf(..., chat_template=CHAT_TEMPLATE_JINJA)``).
"""
from __future__ import annotations

from typing import Sequence

ROLES = ("system", "user", "assistant")
#: Label of a position that carries no loss (PyTorch's and Hugging Face's convention).
IGNORE_INDEX = -100

#: The ChatML template in Jinja, with ``{% generation %}`` around the trained part of an
#: assistant turn (``apply_chat_template(..., return_assistant_tokens_mask=True)``).
CHAT_TEMPLATE_JINJA = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' }}"
    "{% if message['role'] == 'assistant' %}"
    "{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}"
    "{% else %}{{ message['content'] + '<|im_end|>' }}{% endif %}"
    "{{ '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

_SPECIAL_STRINGS = ("<|bos|>", "<|eos|>", "<|pad|>", "<|im_start|>", "<|im_end|>", "<|image|>")


def check_messages(messages) -> list[dict]:
    """Validate a conversation: a non-empty list of ``{"role", "content"}`` dicts.

    Roles are ``system``/``user``/``assistant``; contents are strings that contain no
    special-token text (``"<|im_end|>"`` inside a message would end it early: a prompt
    injection). Returns the list; raises ``TypeError``/``ValueError`` saying what is wrong.
    """
    if isinstance(messages, dict) or not isinstance(messages, (list, tuple)):
        raise TypeError("messages must be a list of {'role': ..., 'content': ...} dicts, got "
                        f"{type(messages).__name__}")
    if len(messages) == 0:
        raise ValueError("messages must hold at least one message")
    for k, m in enumerate(messages):
        if not isinstance(m, dict) or set(m) != {"role", "content"}:
            raise ValueError(f"message {k} must be a dict with exactly the keys 'role' and "
                             f"'content', got {m!r}")
        if m["role"] not in ROLES:
            raise ValueError(f"message {k}: role must be one of {ROLES}, got {m['role']!r}")
        if not isinstance(m["content"], str):
            raise TypeError(f"message {k}: content must be a str, got "
                            f"{type(m['content']).__name__}")
        for s in _SPECIAL_STRINGS:
            if s in m["content"]:
                raise ValueError(f"message {k}: content contains the special token text {s!r}")
    return list(messages)


def chat_segments(messages, add_generation_prompt: bool = False) -> list[tuple[str, bool]]:
    """The rendered conversation as ``(text, trained)`` pieces, in order.

    ``"".join(text for text, _ in chat_segments(m))`` is :func:`render_chat` ``(m)``;
    ``trained`` is True for each assistant content + ``<|im_end|>``.
    """
    out: list[tuple[str, bool]] = []
    for m in check_messages(messages):
        out.append(("<|im_start|>" + m["role"] + "\n", False))
        out.append((m["content"] + "<|im_end|>", m["role"] == "assistant"))
        out.append(("\n", False))
    if add_generation_prompt:
        out.append(("<|im_start|>assistant\n", False))
    return out


def render_chat(messages, add_generation_prompt: bool = False) -> str:
    """The conversation as ChatML text (equal to the tokenizer's ``apply_chat_template``)."""
    return "".join(t for t, _ in chat_segments(messages, add_generation_prompt))


def encode_chat(tokenizer, messages, add_generation_prompt: bool = False
                ) -> tuple[list[int], list[int]]:
    """``(ids, assistant_mask)``: token ids of :func:`render_chat` and a 0/1 list of the same
    length, 1 on the tokens the model is trained to produce (assistant content and its
    ``<|im_end|>``). ``tokenizer`` is a :class:`lib.llm.tokenizer.BPETokenizer`.
    """
    if not hasattr(tokenizer, "encode") or not hasattr(tokenizer, "token_bytes"):
        raise TypeError("tokenizer must be a lib.llm.tokenizer.BPETokenizer")
    segs = chat_segments(messages, add_generation_prompt)
    text = "".join(t for t, _ in segs)
    ids = tokenizer.encode(text)
    spans, pos = [], 0                      # byte spans of the trained pieces
    for t, trained in segs:
        n = len(t.encode("utf-8"))
        if trained:
            spans.append((pos, pos + n))
        pos += n
    mask, start = [], 0
    for i in ids:
        end = start + len(tokenizer.token_bytes(i))
        mask.append(int(any(start < e and end > s for s, e in spans)))
        start = end
    if start != pos:  # pragma: no cover - byte-level BPE covers every byte exactly once
        raise RuntimeError("token bytes do not add up to the rendered text")
    return ids, mask


def chat_labels(ids: Sequence[int], assistant_mask: Sequence[int]) -> list[int]:
    """Hugging Face-style labels (not shifted): ``ids[t]`` where the mask is 1, else -100.

    The model shifts them itself: position ``t`` is scored on ``labels[t + 1]``.
    """
    if len(ids) != len(assistant_mask):
        raise ValueError(f"ids and assistant_mask differ in length: {len(ids)} vs "
                         f"{len(assistant_mask)}")
    if any(m not in (0, 1, True, False) for m in assistant_mask):
        raise ValueError("assistant_mask must hold only 0/1")
    return [int(i) if m else IGNORE_INDEX for i, m in zip(ids, assistant_mask)]


def token_table(tokenizer, ids: Sequence[int], assistant_mask: Sequence[int] | None = None
                ) -> list[dict]:
    """One row per position: ``position, id, token`` (readable text, newline shown as ``\\n``),
    ``special`` (a reserved id) and, with a mask, ``trained``."""
    if assistant_mask is not None and len(assistant_mask) != len(ids):
        raise ValueError("assistant_mask must have one entry per id")
    rows = []
    for p, i in enumerate(ids):
        piece = tokenizer.token_bytes(i).decode("utf-8", errors="replace")
        row = {"position": p, "id": int(i), "token": piece.replace("\n", "\\n"),
               "special": int(i) in tokenizer.id_to_special}
        if assistant_mask is not None:
            row["trained"] = bool(assistant_mask[p])
        rows.append(row)
    return rows


def decode_chat(tokenizer, ids: Sequence[int]) -> list[dict]:
    """Inverse of :func:`encode_chat` for a complete conversation: the messages back.

    Raises ``ValueError`` when the ids are not a sequence of ChatML blocks.
    """
    text = tokenizer.decode(ids)
    blocks = text.split("<|im_end|>\n")
    if blocks[-1] != "":
        raise ValueError("ids do not end with a complete '<|im_end|>\\n' block")
    out = []
    for b in blocks[:-1]:
        if not b.startswith("<|im_start|>") or "\n" not in b:
            raise ValueError(f"malformed block {b[:40]!r}")
        role, content = b[len("<|im_start|>"):].split("\n", 1)
        out.append({"role": role, "content": content})
    return check_messages(out)


__all__ = ["ROLES", "IGNORE_INDEX", "CHAT_TEMPLATE_JINJA", "check_messages", "chat_segments",
           "render_chat", "encode_chat", "chat_labels", "token_table", "decode_chat"]
