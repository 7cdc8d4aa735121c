"""lib.exercises.llm_data: the BPE and patchify checkers accept correct answers and reject wrong ones."""
from collections import Counter

import numpy as np

from lib.exercises.llm_data import check_merge_pair, check_most_frequent_pair, check_patchify
from lib.llm.tokenizer import merge_pair, most_frequent_pair
from lib.llm.vlm import patchify


def test_bpe_checkers_accept_the_vetted_functions_and_reject_wrong_ones():
    assert check_merge_pair(merge_pair, trials=10)
    assert check_most_frequent_pair(most_frequent_pair, trials=10)

    def overlapping(ids, pair, new_id):      # merges overlapping occurrences: wrong on [1, 1, 1]
        out = list(ids)
        for i in range(len(out) - 1):
            if (out[i], out[i + 1]) == tuple(pair):
                out[i] = new_id
        return [v for j, v in enumerate(out) if not (j > 0 and out[j - 1] == new_id and v == pair[1])]
    assert not check_merge_pair(overlapping, trials=40)

    def largest_tie(words):                  # breaks ties the wrong way
        c = Counter()
        for w, n in words.items():
            for p in zip(w, w[1:]):
                c[p] += n
        if not c:
            return None
        best = max(c, key=lambda p: (c[p], p))
        return best, c[best]
    assert not check_most_frequent_pair(largest_tie, trials=40)

    def boom(*args, **kwargs):
        raise RuntimeError("not yet")
    assert not check_merge_pair(boom, trials=2)
    assert not check_most_frequent_pair(boom, trials=2)


def test_patchify_checker():
    assert check_patchify(lambda images, patch: patchify(images, patch), trials=5)
    # a common mistake: reshape without transposing mixes rows of different patches
    wrong = lambda images, patch: np.asarray(images).reshape(images.shape[0], -1, patch * patch * images.shape[-1])  # noqa
    assert not check_patchify(wrong, trials=10)

    def boom(images, patch):
        raise RuntimeError("no")
    assert not check_patchify(boom, trials=2)
