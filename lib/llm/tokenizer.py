"""A byte-level BPE tokenizer trained from scratch (the GPT-2 recipe), with a chat template
and an exact export to the Hugging Face ``tokenizers`` format.

Pipeline of :meth:`BPETokenizer.encode`:

1. special tokens (``<|bos|>``, ``<|im_start|>`` …) are cut out of the text first;
2. the rest is pre-tokenized with a GPT-2-style regular expression (:data:`SPLIT_PATTERN`:
   contractions, runs of letters with an optional leading space, single digits, runs of
   punctuation, whitespace), so merges never cross word boundaries;
3. each pre-token's UTF-8 bytes (ids 0–255) are merged pair by pair, always applying the
   learned merge of lowest rank first (the order in which training learned them).

Training (:meth:`BPETokenizer.train`) counts the unique pre-tokens of the corpus and repeatedly
merges the most frequent adjacent pair (ties: the pair with the smallest ids), updating the pair
counts incrementally. Ids: 0–255 are the bytes, then one id per merge, then the special tokens.

``python -m lib.llm.tokenizer`` retrains the tokenizer the book ships in ``data/tokenizer/``.

Where the export is exact: lib pre-tokenizes with the ``regex`` package, the export with the
regex engine inside ``tokenizers``; both classify characters (``\\p{L}``, ``\\p{N}``, ``\\p{Han}``)
by their own Unicode tables. They agree on every character of Unicode 14.0 (tested on every
5th assigned code point in three contexts). Characters added in Unicode 15.1 and later (e.g. the
CJK Extension I ideograph U+323CA) are known to ``regex`` but not to ``tokenizers``' engine, so
text containing them may be split, and so encoded, differently by lib and by the export.

Book: seed-5.
"""
from __future__ import annotations

import hashlib
import heapq
import json
import pathlib
import time
from collections import Counter, defaultdict
from typing import Iterable, Sequence

import regex

#: GPT-2's pre-tokenizer pattern with two changes: numbers are split into single digits
#: (``" ?\\p{N}"`` instead of ``" ?\\p{N}+"``) so that arithmetic sees digits, and runs of Chinese
#: characters (``\\p{Han}``) are pre-tokens of their own, apart from other letters (Chinese text
#: has no spaces, so ``"Mada最喜欢"`` would otherwise be one "word").
SPLIT_PATTERN = (r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{Han}+| ?(?:(?!\p{Han})\p{L})+| ?\p{N}"""
                 r"""| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")

#: The book's special tokens (they get the last ids, in this order).
SPECIAL_TOKENS = ("<|bos|>", "<|eos|>", "<|pad|>", "<|im_start|>", "<|im_end|>", "<|image|>")

#: Vocabulary size of the shipped tokenizer (256 bytes + merges + special tokens).
DEFAULT_VOCAB_SIZE = 1024
#: Where the shipped tokenizer lives.
TOKENIZER_DIR = pathlib.Path(__file__).resolve().parent.parent.parent / "data" / "tokenizer"
_ROLES = ("system", "user", "assistant")


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map from the 256 byte values to printable unicode characters.

    Printable Latin-1 bytes map to themselves; the others (space, control bytes …) are shifted
    to code points from 256 on, so e.g. the space byte 32 is shown as ``"Ġ"``. Hugging Face's
    ``ByteLevel`` pre-tokenizer uses the same map.
    """
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    mapping, extra = {}, 0
    for b in range(256):
        if b in keep:
            mapping[b] = chr(b)
        else:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping


_B2U = bytes_to_unicode()
_U2B = {u: b for b, u in _B2U.items()}


def _pair_counts(ids: Sequence[int]):
    return zip(ids, ids[1:])


def merge_pair(ids: Sequence[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """Replace every non-overlapping occurrence of ``pair`` (scanning left to right) by ``new_id``.

    ``merge_pair([1, 1, 1, 2], (1, 1), 9) == [9, 1, 2]``. One step of BPE.
    """
    if not isinstance(pair, tuple) or len(pair) != 2:
        raise TypeError(f"pair must be a tuple of two ids, got {pair!r}")
    out, i, n = [], 0, len(ids)
    a, b = pair
    while i < n:
        if i + 1 < n and ids[i] == a and ids[i + 1] == b:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def most_frequent_pair(words: dict[tuple[int, ...], int]) -> tuple[tuple[int, int], int] | None:
    """The most frequent adjacent pair over ``{word (tuple of ids): count}``, ties broken by
    the smallest pair; returns ``(pair, count)`` or ``None`` when no word has two ids.

    The reference (slow, full recount) version of one training step.
    """
    counts: Counter = Counter()
    for w, c in words.items():
        for p in zip(w, w[1:]):
            counts[p] += c
    if not counts:
        return None
    best = min(counts, key=lambda p: (-counts[p], p))
    return best, counts[best]


class BPETokenizer:
    """Byte-level BPE: ``merges[k] = (a, b)`` creates id ``256 + k``; special tokens follow.

    Build one with :meth:`train` or :meth:`load`. ``history`` (after training) lists, per merge,
    the pair, its count and the total number of tokens of the training text after the merge.
    """

    def __init__(self, merges: Sequence[tuple[int, int]], special_tokens: Sequence[str] = SPECIAL_TOKENS,
                 pattern: str = SPLIT_PATTERN):
        if not isinstance(pattern, str):
            raise TypeError("pattern must be a str")
        self.pattern = pattern
        self._re = regex.compile(pattern)
        self.merges: list[tuple[int, int]] = []
        self.vocab: dict[int, bytes] = {i: bytes([i]) for i in range(256)}
        for k, pair in enumerate(merges):
            if len(pair) != 2:
                raise ValueError(f"merge {k} is not a pair: {pair!r}")
            a, b = int(pair[0]), int(pair[1])
            new = 256 + k
            if not (0 <= a < new and 0 <= b < new):
                raise ValueError(f"merge {k} = {pair!r} refers to an id that does not exist yet (< {new})")
            self.merges.append((a, b))
            self.vocab[new] = self.vocab[a] + self.vocab[b]
        self.ranks: dict[tuple[int, int], int] = {p: 256 + k for k, p in enumerate(self.merges)}
        special_tokens = list(special_tokens)
        if len(set(special_tokens)) != len(special_tokens) or not all(isinstance(s, str) and s for s in special_tokens):
            raise ValueError(f"special tokens must be distinct non-empty strings, got {special_tokens}")
        base = 256 + len(self.merges)
        self.special_tokens: dict[str, int] = {s: base + i for i, s in enumerate(special_tokens)}
        self.id_to_special = {i: s for s, i in self.special_tokens.items()}
        self._special_re = (regex.compile("(" + "|".join(regex.escape(s) for s in
                                                        sorted(special_tokens, key=len, reverse=True)) + ")")
                            if special_tokens else None)
        self._cache: dict[str, tuple[int, ...]] = {}
        self.history: list[dict] = []

    # ------------------------------------------------------------------ basic properties
    @property
    def vocab_size(self) -> int:
        return 256 + len(self.merges) + len(self.special_tokens)

    def __len__(self) -> int:
        return self.vocab_size

    def __repr__(self) -> str:
        return (f"BPETokenizer(vocab_size={self.vocab_size}, merges={len(self.merges)}, "
                f"special_tokens={list(self.special_tokens)})")

    def special_id(self, token: str) -> int:
        """Id of a special token such as ``"<|eos|>"``."""
        if token not in self.special_tokens:
            raise KeyError(f"{token!r} is not a special token of this tokenizer ({list(self.special_tokens)})")
        return self.special_tokens[token]

    bos_id = property(lambda self: self.special_id("<|bos|>"), doc="id of ``<|bos|>``")
    eos_id = property(lambda self: self.special_id("<|eos|>"), doc="id of ``<|eos|>``")
    pad_id = property(lambda self: self.special_id("<|pad|>"), doc="id of ``<|pad|>``")
    im_start_id = property(lambda self: self.special_id("<|im_start|>"), doc="id of ``<|im_start|>``")
    im_end_id = property(lambda self: self.special_id("<|im_end|>"), doc="id of ``<|im_end|>``")
    image_id = property(lambda self: self.special_id("<|image|>"), doc="id of ``<|image|>``")

    def token_bytes(self, token_id: int) -> bytes:
        """The bytes a token stands for (a special token's UTF-8 text)."""
        self._check_id(token_id)
        token_id = int(token_id)
        if token_id in self.id_to_special:
            return self.id_to_special[token_id].encode("utf-8")
        return self.vocab[token_id]

    def id_to_token(self, token_id: int) -> str:
        """The token's string in the Hugging Face byte-level alphabet (space shown as ``Ġ``)."""
        self._check_id(token_id)
        token_id = int(token_id)
        if token_id in self.id_to_special:
            return self.id_to_special[token_id]
        return "".join(_B2U[b] for b in self.vocab[token_id])

    def token_to_id(self, token: str) -> int:
        """Inverse of :meth:`id_to_token`."""
        if token in self.special_tokens:
            return self.special_tokens[token]
        if not hasattr(self, "_tok2id"):
            self._tok2id = {self.id_to_token(i): i for i in range(256 + len(self.merges))}
        if token not in self._tok2id:
            raise KeyError(f"unknown token {token!r}")
        return self._tok2id[token]

    def _check_id(self, token_id) -> None:
        if isinstance(token_id, bool) or not hasattr(token_id, "__index__"):
            raise TypeError(f"token ids must be ints, got {type(token_id).__name__} ({token_id!r})")
        if not 0 <= int(token_id) < self.vocab_size:
            raise ValueError(f"token id {int(token_id)} outside the vocabulary [0, {self.vocab_size})")

    # ------------------------------------------------------------------ training
    @classmethod
    def train(cls, texts: str | Iterable[str], vocab_size: int = DEFAULT_VOCAB_SIZE,
              special_tokens: Sequence[str] = SPECIAL_TOKENS, pattern: str = SPLIT_PATTERN,
              verbose: bool = False) -> "BPETokenizer":
        """Learn ``vocab_size - 256 - len(special_tokens)`` merges from ``texts`` (a string or
        an iterable of documents). Deterministic: the most frequent pair wins, ties go to the
        smallest ``(a, b)``. Raises ``ValueError`` if ``vocab_size`` is too small or the text
        runs out of pairs before the vocabulary is full.
        """
        if isinstance(vocab_size, bool) or not isinstance(vocab_size, int):
            raise TypeError(f"vocab_size must be an int, got {type(vocab_size).__name__}")
        n_special = len(list(special_tokens))
        if vocab_size < 256 + n_special:
            raise ValueError(f"vocab_size must be >= 256 bytes + {n_special} special tokens = "
                             f"{256 + n_special}, got {vocab_size}")
        if isinstance(texts, str):
            texts = [texts]
        tok = cls([], special_tokens, pattern)
        # 1. unique pre-tokens with counts (special tokens are cut out of the training text)
        word_counts: Counter = Counter()
        for doc in texts:
            if not isinstance(doc, str):
                raise TypeError(f"texts must be strings, got {type(doc).__name__}")
            for part in tok._split_special(doc, "all"):
                if isinstance(part, str):
                    word_counts.update(tok._re.findall(part))
        words = [list(w.encode("utf-8")) for w in word_counts]
        counts = list(word_counts.values())
        total = sum(len(w) * c for w, c in zip(words, counts))
        # 2. pair statistics: counts and which words contain each pair
        pair_count: dict[tuple[int, int], int] = defaultdict(int)
        where: dict[tuple[int, int], set[int]] = defaultdict(set)
        for i, (w, c) in enumerate(zip(words, counts)):
            for p in zip(w, w[1:]):
                pair_count[p] += c
                where[p].add(i)
        heap = [(-c, p) for p, c in pair_count.items()]
        heapq.heapify(heap)
        merges, history = [], []
        n_merges = vocab_size - 256 - n_special
        t0 = time.perf_counter()
        while len(merges) < n_merges:
            # 3. the most frequent pair (lazy heap: skip stale entries)
            while heap:
                negc, p = heapq.heappop(heap)
                if pair_count.get(p, 0) == -negc and -negc > 0:
                    break
            else:
                raise ValueError(f"the text ran out of pairs after {len(merges)} merges; "
                                 f"use a smaller vocab_size (at most {256 + len(merges) + n_special})")
            new_id = 256 + len(merges)
            merges.append(p)
            applied = 0
            # 4. merge it inside every word that contains it, updating the pair counts
            for i in sorted(where.pop(p)):
                w, c = words[i], counts[i]
                new_w = merge_pair(w, p, new_id)
                if len(new_w) == len(w):
                    continue
                applied += (len(w) - len(new_w)) * c
                touched = set()
                for q in zip(w, w[1:]):
                    pair_count[q] -= c
                    touched.add(q)
                for q in zip(new_w, new_w[1:]):
                    pair_count[q] += c
                    where[q].add(i)
                    touched.add(q)
                words[i] = new_w
                for q in touched:
                    if q != p and pair_count[q] > 0:
                        heapq.heappush(heap, (-pair_count[q], q))
            pair_count.pop(p, None)
            total -= applied
            history.append({"merge": len(merges), "pair": p, "count": applied, "tokens": total})
            if verbose and len(merges) % 100 == 0:
                print(f"merge {len(merges)}/{n_merges}: {p} x{applied} ({time.perf_counter() - t0:.1f}s)")
        out = cls(merges, special_tokens, pattern)
        out.history = history
        out.train_words = len(word_counts)
        return out

    # ------------------------------------------------------------------ encoding
    def _split_special(self, text: str, allowed_special) -> list:
        """Cut ``text`` into plain strings and special-token ids."""
        if allowed_special == "none" or self._special_re is None:
            return [text]
        if allowed_special == "all":
            allowed = self.special_tokens
        else:
            allowed = set(allowed_special)
            unknown = allowed - set(self.special_tokens)
            if unknown:
                raise ValueError(f"unknown special tokens {sorted(unknown)}")
        out = []
        for k, part in enumerate(self._special_re.split(text)):
            if k % 2 == 1 and part in allowed:
                out.append(self.special_tokens[part])
            elif part:
                if out and isinstance(out[-1], str):
                    out[-1] += part
                else:
                    out.append(part)
        return out

    def _encode_word(self, word: str) -> tuple[int, ...]:
        cached = self._cache.get(word)
        if cached is not None:
            return cached
        ids = list(word.encode("utf-8"))
        ranks = self.ranks
        while len(ids) >= 2:
            best, best_rank = None, None
            for p in zip(ids, ids[1:]):
                r = ranks.get(p)
                if r is not None and (best_rank is None or r < best_rank):
                    best, best_rank = p, r
            if best is None:
                break
            ids = merge_pair(ids, best, best_rank)
        out = tuple(ids)
        if len(self._cache) < 500_000:
            self._cache[word] = out
        return out

    def pretokenize(self, text: str) -> list[str]:
        """The pre-tokens (regex pieces) of a plain text, before any merge."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        return self._re.findall(text)

    def encode(self, text: str, allowed_special="all", add_bos: bool = False,
               add_eos: bool = False) -> list[int]:
        """Token ids of ``text``.

        ``allowed_special``: ``"all"`` (default, like Hugging Face: special-token strings in the
        text become their ids), ``"none"`` (they are encoded as ordinary text) or a set of the
        special tokens to recognise. ``add_bos``/``add_eos`` wrap the ids in ``<|bos|>``/``<|eos|>``.
        """
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        ids: list[int] = [self.special_tokens["<|bos|>"]] if add_bos else []
        for part in self._split_special(text, allowed_special):
            if isinstance(part, int):
                ids.append(part)
            else:
                for word in self._re.findall(part):
                    ids.extend(self._encode_word(word))
        if add_eos:
            ids.append(self.special_tokens["<|eos|>"])
        return ids

    def encode_batch(self, texts: Sequence[str], **kwargs) -> list[list[int]]:
        """:meth:`encode` applied to each text."""
        if isinstance(texts, str):
            raise TypeError("encode_batch takes a list of strings; use encode for one string")
        return [self.encode(t, **kwargs) for t in texts]

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = False, errors: str = "replace") -> str:
        """Text of ``ids``; byte sequences that are not valid UTF-8 become U+FFFD (like Hugging
        Face's byte-level decoder) unless ``errors="strict"``."""
        if isinstance(ids, (str, bytes)):
            raise TypeError("decode takes a sequence of token ids, not a string")
        try:
            ids = list(ids)
        except TypeError:
            raise TypeError(f"decode takes a sequence of token ids, got {type(ids).__name__}") from None
        chunks, buf = [], bytearray()
        for t in ids:
            self._check_id(t)
            t = int(t)
            if t in self.id_to_special:
                if skip_special_tokens:
                    continue      # dropped before decoding: bytes on both sides still join (as HF)
                if buf:
                    chunks.append(buf.decode("utf-8", errors=errors))
                    buf = bytearray()
                chunks.append(self.id_to_special[t])
            else:
                buf += self.vocab[t]
        if buf:
            chunks.append(buf.decode("utf-8", errors=errors))
        return "".join(chunks)

    def tokens(self, text: str, **kwargs) -> list[str]:
        """The token pieces of ``text`` as readable strings (bytes decoded with replacement)."""
        return [self.token_bytes(i).decode("utf-8", errors="replace") for i in self.encode(text, **kwargs)]

    # ------------------------------------------------------------------ chat template
    def apply_chat_template(self, messages: Sequence[dict], add_generation_prompt: bool = False,
                            tokenize: bool = False):
        """ChatML: each message becomes ``<|im_start|>{role}\\n{content}<|im_end|>\\n``.

        ``add_generation_prompt=True`` appends ``<|im_start|>assistant\\n`` so that a model
        continues with the assistant's answer. Returns the string, or its ids when ``tokenize``.
        """
        if isinstance(messages, dict) or not isinstance(messages, (list, tuple)):
            raise TypeError("messages must be a list of {'role': ..., 'content': ...} dicts")
        parts = []
        for k, m in enumerate(messages):
            if not isinstance(m, dict) or set(m) - {"role", "content"} or "role" not in m or "content" not in m:
                raise ValueError(f"message {k} must be a dict with keys 'role' and 'content', got {m!r}")
            if m["role"] not in _ROLES:
                raise ValueError(f"message {k}: role must be one of {_ROLES}, got {m['role']!r}")
            if not isinstance(m["content"], str):
                raise TypeError(f"message {k}: content must be a str, got {type(m['content']).__name__}")
            parts.append(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n")
        if add_generation_prompt:
            parts.append("<|im_start|>assistant\n")
        text = "".join(parts)
        return self.encode(text) if tokenize else text

    #: The same template in Jinja (for ``tokenizer_config.json`` / transformers).
    CHAT_TEMPLATE_JINJA = ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + "
                           "message['content'] + '<|im_end|>' + '\n' }}{% endfor %}"
                           "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")

    # ------------------------------------------------------------------ save / load
    def to_dict(self) -> dict:
        return {"format": "book-byte-bpe", "version": 1, "pattern": self.pattern,
                "special_tokens": list(self.special_tokens), "merges": [list(p) for p in self.merges]}

    def save(self, path) -> pathlib.Path:
        """Write the book's JSON format (merges as id pairs; no pickles)."""
        path = pathlib.Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), separators=(",", ":")) + "\n", encoding="utf-8")
        return path

    @classmethod
    def from_dict(cls, d: dict) -> "BPETokenizer":
        if not isinstance(d, dict) or d.get("format") != "book-byte-bpe":
            raise ValueError("not a book byte-level BPE tokenizer (missing format 'book-byte-bpe')")
        return cls([tuple(p) for p in d["merges"]], d["special_tokens"], d["pattern"])

    @classmethod
    def load(cls, path) -> "BPETokenizer":
        """Read a file written by :meth:`save`."""
        return cls.from_dict(json.loads(pathlib.Path(path).read_text(encoding="utf-8")))

    # ------------------------------------------------------------------ Hugging Face export
    def to_hf_json(self) -> dict:
        """The tokenizer as a Hugging Face ``tokenizer.json`` dict: a ``Split`` pre-tokenizer with
        :data:`SPLIT_PATTERN` then ``ByteLevel`` (no regex), a BPE model with the same vocabulary
        and ranked merges, special tokens as added tokens, a ``ByteLevel`` decoder."""
        n = 256 + len(self.merges)
        vocab = {self.id_to_token(i): i for i in range(n)}
        merges = [[self.id_to_token(a), self.id_to_token(b)] for a, b in self.merges]
        added = [{"id": i, "content": s, "single_word": False, "lstrip": False, "rstrip": False,
                  "normalized": False, "special": True} for s, i in self.special_tokens.items()]
        return {
            "version": "1.0",
            "truncation": None,
            "padding": None,
            "added_tokens": added,
            "normalizer": None,
            "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": self.pattern}, "behavior": "Isolated", "invert": False},
                {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False},
            ]},
            "post_processor": None,
            "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False},
            "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                      "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                      "ignore_merges": False, "vocab": vocab, "merges": merges},
        }

    def save_hf(self, directory) -> pathlib.Path:
        """Write ``tokenizer.json`` (and a ``tokenizer_config.json`` with the chat template) into
        ``directory``; returns the path of ``tokenizer.json``."""
        directory = pathlib.Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / "tokenizer.json"
        path.write_text(json.dumps(self.to_hf_json(), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        config = {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<|bos|>", "eos_token": "<|eos|>",
                  "pad_token": "<|pad|>", "add_bos_token": False, "add_eos_token": False,
                  "model_max_length": 1024, "chat_template": self.CHAT_TEMPLATE_JINJA}
        if all(t in self.special_tokens for t in ("<|bos|>", "<|eos|>", "<|pad|>")):
            (directory / "tokenizer_config.json").write_text(json.dumps(config, ensure_ascii=False, indent=1) + "\n",
                                                             encoding="utf-8")
        return path

    def to_hf(self):
        """A ``tokenizers.Tokenizer`` built from :meth:`to_hf_json` (needs the ``tokenizers`` package)."""
        from tokenizers import Tokenizer

        return Tokenizer.from_str(json.dumps(self.to_hf_json()))


def load_tokenizer(path=None) -> BPETokenizer:
    """The tokenizer the book ships (``data/tokenizer/tokenizer.book.json``) or one at ``path``."""
    path = pathlib.Path(path) if path is not None else TOKENIZER_DIR / "tokenizer.book.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found; run `python -m lib.llm.tokenizer` to train it")
    return BPETokenizer.load(path)


def train_book_tokenizer(seed: int = 0, vocab_size: int = DEFAULT_VOCAB_SIZE) -> BPETokenizer:
    """Train the book's tokenizer on the training split of ``build_corpus(seed)``."""
    from lib.data.corpus import build_corpus

    return BPETokenizer.train(build_corpus(seed).train, vocab_size)


def main(argv=None) -> int:
    """``python -m lib.llm.tokenizer [--seed 0] [--vocab-size 1024] [--out data/tokenizer]``."""
    import argparse

    from lib.data.corpus import build_corpus

    ap = argparse.ArgumentParser(description="Train the book's byte-level BPE tokenizer on the book corpus.")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--vocab-size", type=int, default=DEFAULT_VOCAB_SIZE)
    ap.add_argument("--out", default=str(TOKENIZER_DIR))
    args = ap.parse_args(argv)
    corpus = build_corpus(args.seed)
    t0 = time.perf_counter()
    tok = BPETokenizer.train(corpus.train, args.vocab_size)
    train_s = time.perf_counter() - t0
    out = pathlib.Path(args.out)
    tok.save(out / "tokenizer.book.json")
    tok.save_hf(out)
    train_text, val_text = corpus.text("train"), corpus.text("val")
    n_train, n_val = len(tok.encode(train_text)), len(tok.encode(val_text))
    meta = {
        "what": "byte-level BPE tokenizer of the book, trained on build_corpus(seed).train",
        "command": f"python -m lib.llm.tokenizer --seed {args.seed} --vocab-size {args.vocab_size}",
        "seed": args.seed,
        "vocab_size": tok.vocab_size,
        "n_merges": len(tok.merges),
        "special_tokens": tok.special_tokens,
        "pattern": tok.pattern,
        "corpus_sha256": corpus.sha256(),
        "corpus_train_documents": len(corpus.train),
        "corpus_train_characters": len(train_text),
        "train_tokens": n_train,
        "val_tokens": n_val,
        "train_bytes_per_token": round(len(train_text.encode("utf-8")) / n_train, 4),
        "val_bytes_per_token": round(len(val_text.encode("utf-8")) / n_val, 4),
        "vocab_sha256": hashlib.sha256(json.dumps(tok.to_dict()["merges"]).encode()).hexdigest(),
        "train_seconds": round(train_s, 2),
    }
    (out / "tokenizer.meta.json").write_text(json.dumps(meta, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(meta, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
