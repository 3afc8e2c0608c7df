"""Constraints on the slots of a generated triplet linearisation, as transformers logits processors.

- ``RelationConstraint``: the relation slot of a REBEL linearisation kept inside the inventory.
- ``CopyConstraint``: every head and tail a triplet generation writes is a span of the input text.
"""

from __future__ import annotations

import re
from typing import Sequence

from relcli.errors import UserError
from relcli.triplets import REBEL_TOKENS, word_aligned


class RelationConstraint:
    """A transformers logits processor that keeps the REBEL relation slot inside an inventory.

    After ``<obj>``, only token sequences that spell an inventory relation are allowed; once one
    is complete, the next token must be a REBEL marker or end of sequence. Relations are tokenised
    as they appear after ``<obj>`` in a linearisation (followed by ``<subj>`` or by nothing), so
    the allowed sequences match what the model was trained on. Rows with an unknown prefix (only
    possible if generation started inside the slot) are left alone.
    """

    def __init__(self, tokenizer, relations: Sequence[str], prompt_length: int):
        self.prompt_length = prompt_length
        self.markers = [tokenizer.convert_tokens_to_ids(t) for t in REBEL_TOKENS]
        if tokenizer.unk_token_id in self.markers or None in self.markers:
            raise UserError("the relation constraint needs a tokenizer that knows " + " ".join(REBEL_TOKENS))
        self.obj = self.markers[2]
        self.ends = self.markers + [tokenizer.eos_token_id]
        self.trie: dict = {}
        for relation in relations:
            for suffix in (" <subj>", ""):
                ids = tokenizer.encode(f"<obj> {relation}{suffix}", add_special_tokens=False)
                ids = ids[ids.index(self.obj) + 1 :]
                if suffix:
                    ids = ids[: ids.index(self.markers[1])]
                node = self.trie
                for token in ids:
                    node = node.setdefault(token, {})
                node[None] = {}

    def _allowed(self, generated: list[int]) -> list[int] | None:
        if self.obj not in generated:
            return None
        after = generated[len(generated) - generated[::-1].index(self.obj) :]
        if any(token in self.markers for token in after):
            return None
        node = self.trie
        for token in after:
            if token not in node:
                return None
            node = node[token]
        return [t for t in node if t is not None] + (self.ends if None in node else [])

    def __call__(self, input_ids, scores):
        for row, ids in enumerate(input_ids[:, self.prompt_length :].tolist()):
            allowed = self._allowed(ids)
            if allowed is not None:
                keep = scores[row, allowed]
                scores[row] = float("-inf")
                scores[row, allowed] = keep
        return scores


def special_ids_to_drop(tokenizer) -> set[int]:
    """The special tokens a triplet generation's text leaves out: all but the REBEL markers."""
    return set(tokenizer.all_special_ids) - set(tokenizer.convert_tokens_to_ids(REBEL_TOKENS))


def generation_text(tokenizer, ids: Sequence[int], drop: set[int]) -> str:
    """The text of generated token ids as the triplet parser reads it: special tokens in ``drop``
    left out, markers kept, spacing exactly as generated (no clean-up of " ," and the like, which
    would make a copied "Ohio , USA" differ from the text it was copied from)."""
    return tokenizer.decode([t for t in ids if t not in drop], skip_special_tokens=False,
                            clean_up_tokenization_spaces=False)


_MARKER = re.compile("|".join(map(re.escape, REBEL_TOKENS)))
_JSON_ENTITY = re.compile(r'[{,]\s*"(?:head|tail)"\s*:\s*"')  # the opening of a head or tail string value
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_HEX = re.compile(r"[0-9a-fA-F]{0,4}")
# The end of a text whose last character is not complete yet: the first bytes of a UTF-8 character
# (decoded one token at a time they read as one replacement character), or the first half of a JSON
# surrogate pair.
_PARTIAL_END = re.compile("[\ufffd\ud800-\udbff]$")

# An entity region: (where it ends in the generation, its text so far, whether it is closed). A
# text of None is a region that cannot become an entity (a broken JSON string).
Region = tuple[int, "str | None", bool]


def _json_string(raw: str) -> tuple[str | None, int | None]:
    """The value of the JSON string whose body (after the opening quote) starts ``raw``, and the
    index just past its closing quote (None while it is open). A value of None: not JSON (a bad
    escape, a raw control character). An escape cut off at the end is left out of an open value."""
    units, i = [], 0
    while i < len(raw):
        c = raw[i]
        if c == '"':
            return _utf16(units), i + 1
        if c < " ":
            return None, None
        if c != "\\":
            units.append(c)
            i += 1
            continue
        if i + 1 == len(raw):
            break
        e = raw[i + 1]
        if e == "u":
            digits = _HEX.match(raw, i + 2).group()
            if len(digits) < 4:
                if i + 2 + len(digits) == len(raw):
                    break  # cut off while being written
                return None, None
            units.append(chr(int(digits, 16)))
            i += 6
        elif e in _ESCAPES:
            units.append(_ESCAPES[e])
            i += 2
        else:
            return None, None
    return _utf16(units), None


def _utf16(units: list[str]) -> str:
    """Characters with JSON's \\u surrogate pairs joined; a lone surrogate stays (it is in no text)."""
    value = "".join(units)
    try:
        return value.encode("utf-16", "surrogatepass").decode("utf-16")
    except UnicodeDecodeError:
        return value


def entity_regions(generation: str, style: str) -> list[Region]:
    """The head and tail regions of a (partial) triplet generation, in order.

    REBEL: the text after each ``<triplet>`` (head) or ``<subj>`` (tail) up to the next marker; the
    last one is open unless a marker follows it, and a marker being spelt out at its end (``<su``)
    is not part of it. JSON: the string values of ``"head"`` and ``"tail"`` keys, unescaped. These
    are the texts relcli.triplets.parse makes the entities of.
    """
    regions: list[Region] = []
    if style == "rebel":
        marks = list(_MARKER.finditer(generation))
        for mark, following in zip(marks, marks[1:] + [None]):
            if mark.group() == "<obj>":
                continue
            if following is not None:
                regions.append((following.start(), generation[mark.end() : following.start()], True))
                continue
            value = generation[mark.end() :]
            cut = value.rfind("<")
            if cut >= 0 and any(marker.startswith(value[cut:]) for marker in REBEL_TOKENS):
                value = value[:cut]
            regions.append((len(generation), value, False))
        return regions
    for match in _JSON_ENTITY.finditer(generation):
        value, end = _json_string(generation[match.end() :])
        regions.append((len(generation) if end is None else match.end() + end, value, end is not None))
    return regions


def copied(value: str | None, closed: bool, text: str) -> bool:
    """Whether an entity region can be (closed: is) a span of ``text`` between words, as the parser
    strips it: a closed one must occur in ``text`` starting and ending between words (not "M" out
    of "Mechanics"), an open one must occur starting between words, so that it may still grow into
    such a span, with at most one whitespace character before and after it (so a model cannot pad
    a slot with spaces forever; the one after it need not be in the text where the region could
    close before it). A character still being spelt out at its end (UTF-8 bytes, a
    surrogate pair) must be able to become the next one: the text must have a non-ASCII one there.
    """
    if value is None:
        return False
    if closed:
        core = value.strip()
        return bool(core) and _found(core, text, whole=True)
    if len(value) - len(value.lstrip()) > 1:
        return False
    if _PARTIAL_END.search(value):
        return _found(value[:-1].lstrip(), text, non_ascii_next=True)
    if len(value) - len(value.rstrip()) > 1:
        return False
    if not value.strip():
        return len(value) <= 1
    # A space at the end may be the separator before the marker that closes the region (REBEL
    # writes "Oregon <obj>"): it fits wherever the region could close, as "Oregon." allows.
    return _found(value.lstrip(), text) or (value[-1].isspace() and copied(value, True, text))


def _found(span: str, text: str, whole: bool = False, non_ascii_next: bool = False) -> bool:
    """Whether ``span`` occurs in ``text`` starting between words (and ending between words, with
    ``whole``; followed by a non-ASCII character, with ``non_ascii_next``)."""
    start = text.find(span)
    while start >= 0:
        end = start + len(span)
        if word_aligned(text, start, end if whole else None) and (
                not non_ascii_next or (end < len(text) and not text[end].isascii())):
            return True
        start = text.find(span, start + 1)
    return False


class CopyConstraint:
    """A transformers logits processor (greedy decoding) that makes every head and tail a triplet
    generation writes a span of its row's input text.

    A token fits when its addition leaves every head and tail region :func:`copied` from the text:
    inside a region it must continue a span of the text or close the region (REBEL: the next
    marker; JSON: the closing quote) once that is a whole span; outside one any token fits. The
    check decodes the candidate's whole generation, so it works on characters whatever the
    tokeniser (REBEL markers as single tokens or spelt out, JSON escapes, bytes of UTF-8
    characters). A row whose best token fits is left alone (greedy decoding takes it). Otherwise
    the ``top_k`` best tokens are tried, best first, then the tokens of the text itself, those that
    copy on from where the open region occurs in the text, and the closing tokens (best first
    again); the first that fits becomes the only one allowed. If none fits, the row ends (end of
    sequence), leaving a truncated fragment that the parser drops and counts as malformed, never an
    entity absent from the text. End of sequence is refused while a region is open.
    """

    def __init__(self, tokenizer, texts: Sequence[str], style: str, prompt_length: int, top_k: int = 16):
        self.tokenizer, self.texts, self.style = tokenizer, list(texts), style
        self.prompt_length, self.top_k = prompt_length, top_k
        self.drop = special_ids_to_drop(tokenizer)
        self.end_id = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.pad_token_id
        closers = ['"', ' "', '",', '"}', *REBEL_TOKENS, *(" " + marker for marker in REBEL_TOKENS)]
        self.closers = {ids[0] for ids in tokenizer(closers, add_special_tokens=False).input_ids if ids}
        self.pools: dict[int, list[int]] = {}
        self.pieces: dict[int, str] = {}  # token -> its text alone

    def _text(self, ids: list[int]) -> str:
        return generation_text(self.tokenizer, ids, self.drop)

    def _fits(self, row: int, ids: list[int], before: str, candidate: int) -> bool:
        if candidate in self.drop:
            regions = entity_regions(before, self.style)
            return not regions or regions[-1][2]
        after = self._text(ids + [candidate])
        # The last characters of `before` may change (bytes completing a character): look from a
        # little earlier, regions ending before that were already checked.
        since = max(len(before) - 4, 0)
        return all(copied(value, closed, self.texts[row])
                   for end, value, closed in entity_regions(after, self.style) if end >= since)

    def _pool(self, row: int) -> list[int]:
        """The fallback candidates of a row: the tokens of its text (also after a space) and the
        tokens that close a region."""
        if row not in self.pools:
            text = self.texts[row]
            encoded = self.tokenizer([text, " " + text], add_special_tokens=False).input_ids
            self.pools[row] = sorted(({t for ids in encoded for t in ids} | self.closers) - self.drop)
        return self.pools[row]

    def _piece(self, token: int) -> str:
        if token not in self.pieces:
            self.pieces[token] = self.tokenizer.decode([token], skip_special_tokens=False,
                                                       clean_up_tokenization_spaces=False)
        return self.pieces[token]

    def _open_region(self, row: int, before: str) -> tuple[str, list[str]] | None:
        """For a generation whose last region is open: its text so far and what follows each of its
        occurrences (starting between words) in the row's text; None otherwise."""
        regions = entity_regions(before, self.style)
        if not regions or regions[-1][2] or regions[-1][1] is None or _PARTIAL_END.search(regions[-1][1]):
            return None
        value, text, follows = regions[-1][1].lstrip(), self.texts[row], []
        start = text.find(value)
        while start >= 0:
            if word_aligned(text, start):
                follows.append(text[start + len(value) : start + len(value) + 32])
            start = text.find(value, start + 1)
        return value, follows

    def _continuations(self, follows: list[str], most: int = 8) -> set[int]:
        """The tokens that copy on from the first ``most`` places an open region occurs in the text:
        the first token of what follows each. With them a region that a model began, say "M", can
        always grow into a span ("Mechanics") even when no token of the text's own tokenisation
        continues it."""
        follows = [f for f in follows[:most] if f]
        encoded = self.tokenizer(follows, add_special_tokens=False).input_ids if follows else []
        return {ids[0] for ids in encoded if ids} - self.drop

    def _plausible(self, row: int, open_region: tuple[str, list[str]] | None, token: int) -> bool:
        """A cheap necessary condition for a token to fit, before the exact check decodes the
        generation: inside an open region, its text must occur where the region can continue (or
        in the text, for a region still empty), unless it may close the region, is whitespace, or
        spells an escape or a part of a character."""
        if open_region is None:
            return True
        piece = self._piece(token)
        if not piece.strip() or any(c in piece for c in '"<\\\ufffd'):
            return True
        value, follows = open_region
        if not value.strip():
            return piece.strip() in self.texts[row]
        return any(f.startswith(piece) or f.startswith(" " + piece) for f in follows)

    def __call__(self, input_ids, scores):
        best = scores.argmax(-1).tolist()  # what greedy decoding takes unless a row is changed
        for row, ids in enumerate(input_ids[:, self.prompt_length :].tolist()):
            ids = [t for t in ids if t not in self.drop]
            before = self._text(ids)
            if self._fits(row, ids, before, best[row]):
                continue
            open_region = self._open_region(row, before)
            top = scores[row].topk(min(self.top_k, scores.shape[-1]))
            chosen = self._first_fit(row, ids, before, open_region, top.indices.tolist(), top.values.tolist())
            if chosen is None:
                pool = sorted(set(self._pool(row)) | (self._continuations(open_region[1]) if open_region else set()))
                ranked = sorted(zip(pool, scores[row, pool].tolist()), key=lambda pair: -pair[1])
                chosen = self._first_fit(row, ids, before, open_region, *zip(*ranked)) if ranked else None
            value = float(scores[row, chosen]) if chosen is not None else 0.0
            scores[row] = float("-inf")
            scores[row, self.end_id if chosen is None else chosen] = value
        return scores

    def _first_fit(self, row: int, ids: list[int], before: str, open_region, candidates, values) -> int | None:
        """The first of the candidates (best first) that fits; one another processor ruled out
        (-inf) never does."""
        return next((c for c, v in zip(candidates, values) if v != float("-inf")
                     and self._plausible(row, open_region, c) and self._fits(row, ids, before, c)), None)
