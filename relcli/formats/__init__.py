"""Converters from dataset formats to relcli records: one module per format, one entry point.

Each reader takes a binary stream and yields validated records; a reader declares the options it
understands as keyword arguments (``report`` receives counts of what it changed or dropped,
``skipped`` collects bad lines it may skip). A reader whose first parameter is ``path`` (brat: a
directory, or an ``.ann`` beside its ``.txt``) gets the source path instead of a stream, and names
the files in its own errors. The formats in DOCUMENT_FORMATS yield end-to-end records with
``entities``, which ``pairs`` turns into relation-classification records.
"""

from __future__ import annotations

import inspect
from collections import Counter
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator

from relcli.errors import UserError
from relcli.formats import brat, conll04, doccano, label_studio, marked, prodigy, rebel, semeval, tacred
from relcli.formats.pairs import Pairing, to_pairs
from relcli.formats.tacred import Patch, load_patch
from relcli.records import Record, RecordError

FORMATS = {
    "semeval": semeval.read,
    "tacred": tacred.read,
    "marked": marked.read,
    "rebel": rebel.read,
    "conll04": conll04.read,
    "brat": brat.read,
    "doccano": doccano.read,
    "label-studio": label_studio.read,
    "prodigy": prodigy.read,
}
DOCUMENT_FORMATS = ("brat", "conll04", "doccano", "label-studio", "prodigy")

__all__ = ["DOCUMENT_FORMATS", "FORMATS", "Patch", "Pairing", "convert", "convert_sources", "load_patch", "pairing", "to_pairs"]


def _reader(fmt: str):
    if fmt not in FORMATS:
        raise UserError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
    return FORMATS[fmt]


def _check_options(fmt: str, read, options: dict) -> None:
    accepted = inspect.signature(read).parameters
    for name in options:
        if name not in accepted:
            takers = [other for other, reader in FORMATS.items() if name in inspect.signature(reader).parameters]
            raise UserError(f"does not apply to {fmt} (only to {', '.join(takers)})", param=name)


def convert(
    fmt: str, sources: Iterable[Path | BinaryIO], report: Counter | None = None, **options
) -> Iterator[Record]:
    """Records from each source in turn (a path, or a binary stream such as stdin).

    ``options`` go to the format's reader (``patch`` for tacred, ``annotator`` for label-studio and
    prodigy, ``skipped`` for the line-based ones);
    ``report`` (a Counter) collects what readers changed or dropped. Errors are one-line
    UserErrors naming the source: ``TRAIN_FILE.TXT line 17: ...``.
    """
    read = _reader(fmt)
    options = {name: value for name, value in options.items() if value is not None}
    _check_options(fmt, read, options)
    if "report" in inspect.signature(read).parameters:
        options["report"] = report if report is not None else Counter()
    for source in sources:
        if next(iter(inspect.signature(read).parameters)) == "path":
            if not isinstance(source, (str, Path)):
                raise UserError(f"{fmt} reads files or directories, not {getattr(source, 'name', '<stdin>')}")
            yield from read(Path(source), **options)
        elif isinstance(source, (str, Path)):
            try:
                stream = open(source, "rb")
            except FileNotFoundError:
                raise UserError(f"no such file: {source}") from None
            except IsADirectoryError:
                raise UserError(f"{source} is a directory, expected a file") from None
            except OSError as exc:
                raise UserError(f"cannot read {source}: {exc.strerror}") from None
            with stream:
                yield from _read(read, stream, str(source), options)
        else:
            yield from _read(read, source, getattr(source, "name", "<stdin>"), options)


def _read(read, stream: BinaryIO, name: str, options: dict) -> Iterator[Record]:
    try:
        yield from read(stream, **options)
    except RecordError as exc:
        raise UserError(f"{name} {exc}" if exc.line else f"{name}: {exc}") from None


def pairing(fmt: str, pairs: bool, seed: int = 13, **options) -> Pairing | None:
    """What ``convert --pairs`` asks for, or None without it; options that need --pairs are refused."""
    given = {name: value for name, value in options.items() if value is not None}
    if not pairs:
        if given:
            raise UserError("applies only to entity pairs (pairs)", param=next(iter(given)))
        return None
    _reader(fmt)
    if fmt not in DOCUMENT_FORMATS:
        raise UserError(f"does not apply to {fmt} (only to {', '.join(DOCUMENT_FORMATS)})", param="pairs")
    return Pairing(seed=seed, **given)


def convert_sources(fmt: str, sources: Iterable[Path | BinaryIO], report: Counter, *, patch: Patch | None = None,
                    skipped=None, annotator: str | None = None, split_dev: float | None = None, seed: int = 13,
                    only: str | None = None, pairs: bool = False, **pair_options) -> Iterator[Record]:
    """What ``relcli convert`` writes: the records of ``sources`` (``convert``), with a dev carve
    (``split_dev``, ``only``: relcli.splits) and, with ``pairs``, one RC record per entity pair
    (``pair_options``: ``pairing``). Options are checked before anything is read."""
    from relcli.splits import carve_dev

    pair_with = pairing(fmt, pairs, seed, **pair_options)
    records = convert(fmt, sources, report, patch=patch, skipped=skipped, annotator=annotator)
    if split_dev is not None or only is not None:
        records = carve_dev(records, split_dev, seed, only)
    return to_pairs(records, pair_with, report) if pair_with is not None else records
