"""A deterministic train/dev carve: each record's side comes from a hash of (seed, id).

Hashing the id rather than counting positions keeps a record on the same side whatever the file
order, and lets several files (or a re-run) agree without any state.
"""

from __future__ import annotations

import hashlib
from typing import Iterable, Iterator

from relcli.errors import UserError
from relcli.records import Record

SPLITS = ("train", "dev")


def split_of(record_id: str | int, dev_fraction: float, seed: int) -> str:
    """``"dev"`` for about ``dev_fraction`` of ids, ``"train"`` for the rest; stable per (seed, id)."""
    digest = hashlib.blake2b(f"{seed}\x00{record_id}".encode(), digest_size=8).digest()
    return "dev" if int.from_bytes(digest, "big") < dev_fraction * 2**64 else "train"


def carve_dev(records: Iterable[Record], dev_fraction: float, seed: int, only: str | None = None) -> Iterator[Record]:
    """Each record with ``"split": "train"|"dev"`` added; with ``only``, just that side."""
    if dev_fraction is None:
        raise UserError("choosing a side (train or dev) needs a dev fraction", param="only")
    if only is not None and only not in SPLITS:
        raise UserError(f"{only!r}: the sides are train and dev", param="only")
    return _carve(records, dev_fraction, seed, only)


def _carve(records: Iterable[Record], dev_fraction: float, seed: int, only: str | None) -> Iterator[Record]:
    for record in records:
        split = split_of(record["id"], dev_fraction, seed)
        if only is None or split == only:
            yield {**record, "split": split}
