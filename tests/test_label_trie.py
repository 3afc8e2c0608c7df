"""LabelTrie: the prefixes that decide a label, which let constrained decoding stop early."""

from __future__ import annotations

from types import SimpleNamespace

from relcli.decoding import LabelTrie

END = 0


class CharTokenizer:
    """One token per character (ids from 1), enough to build a trie."""

    def __call__(self, text, add_special_tokens=False):
        return SimpleNamespace(input_ids=[ord(c) for c in text])


def ids(text: str, end: bool = False) -> list[int]:
    return [ord(c) for c in text] + ([END] if end else [])


def test_decided_prefixes_and_labels():
    trie = LabelTrie(CharTokenizer(), ["Cause(e1)", "Cause(e2)", "Other", "Oth"], END)
    assert trie.label(ids("Cause(e1")) == "Cause(e1)"  # decided before the closing bracket
    assert trie.label(ids("Cause(e")) is None  # the direction is still open
    assert trie.label(ids("Other")) == "Other"  # "Oth" + end is the other label below "Oth"
    assert trie.label(ids("Oth", end=True)) == "Oth"
    assert trie.label(ids("Cause(e2)", end=True) + [5, 5]) == "Cause(e2)"  # padding after a finished row
    assert trie.label(ids("Xyz")) is None


def test_a_label_subset_restricts_the_walk_and_decides_earlier():
    trie = LabelTrie(CharTokenizer(), ["Cause(e1)", "Cause(e2)", "Other", "Oth"], END)
    only = frozenset({"Cause(e2)", "Oth"})
    assert trie.allowed(()) == sorted(ids("CO"))  # unrestricted
    assert trie.allowed(tuple(ids("Cause(e")), only) == ids("2")  # e1 is not allowed
    assert trie.allowed(tuple(ids("Oth")), only) == [END]  # "Other" is not allowed: only the end
    assert trie.allowed(tuple(ids("Oth")), frozenset({"Other"})) == ids("e")
    assert trie.label(ids("C"), only) == "Cause(e2)"  # decided at its first token
    assert trie.label(ids("C")) is None
    assert trie.decides(tuple(ids("O")), only) == "Oth" and trie.decides(tuple(ids("O"))) is None
