"""brat standoff: ``NAME.txt`` with its ``NAME.ann``, one document each, to end-to-end records.

The source is a directory (every ``.ann`` under it, recursively, in name order; the record id is
the path below that directory without ``.ann``) or one ``NAME.ann`` (id ``NAME``), so this reader
takes paths, not streams. The ``.txt`` is read as UTF-8 without newline translation: offsets are
code points, ``\\r\\n`` counts two.

- ``T`` lines are the entities (``type`` = the brat type, event triggers included). A discontinuous
  span ``s1 e1;s2 e2`` becomes one span from the first start to the last end, so its ``text`` is
  the slice between (the gap included); its surface must equal the fragments joined by a space,
  as brat writes it. Each is counted.
- ``R`` lines are the triplets (``Arg1`` head, ``Arg2`` tail). An argument that is an event ``E``
  stands for the event's trigger span (counted); an id defined nowhere in the file is an error.
- ``E`` lines are read for their triggers; their arguments are not converted (counted), nor are
  ``A``/``M`` attributes, ``*`` equivalences, ``#`` notes and ``N`` normalisations (each counted).

Errors name the ``.ann`` file and line; with ``--skip-invalid`` the bad line is skipped and counted.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Iterator

from relcli.errors import UserError
from relcli.formats.documents import count, document_record, entity_span
from relcli.records import Record, RecordError, SkipReport, make_span

_IGNORED = {"A": "attributes (A)", "M": "attributes (M)", "*": "equivalences (*)", "#": "notes (#)",
            "N": "normalisations (N)"}


def _documents(path: Path, report: Counter) -> Iterator[tuple[str, Path]]:
    if path.is_dir():
        anns = sorted(path.rglob("*.ann"))
        if not anns:
            raise UserError(f"no .ann files under {path}")
        count(report, "brat .txt files without an .ann (ignored)",
              sum(not txt.with_suffix(".ann").exists() for txt in path.rglob("*.txt")))
        for ann in anns:
            yield ann.relative_to(path).with_suffix("").as_posix(), ann
    elif path.suffix in (".ann", ".txt"):
        yield path.stem, path.with_suffix(".ann")
    elif path.exists():
        raise UserError(f"brat reads a directory or NAME.ann (beside NAME.txt), not {path}")
    else:
        raise UserError(f"no such file: {path}")


def _read_text(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise UserError(f"no such file: {path} (the text of {path.with_suffix('.ann').name})") from None
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not UTF-8 text (byte {exc.start})") from None


def _entity(fields: list[str], text: str, report: Counter) -> dict:
    kind, _, offsets = fields[1].partition(" ")
    try:
        fragments = [tuple(map(int, fragment.split())) for fragment in offsets.split(";")]
    except ValueError:
        fragments = []
    if not kind or not fragments or any(len(fragment) != 2 for fragment in fragments):
        raise RecordError(f"expected 'TYPE START END' or 'TYPE S1 E1;S2 E2', got {fields[1]!r}")
    surface = fields[2] if len(fields) > 2 else None
    if len(fragments) == 1:
        return entity_span(text, *fragments[0], kind, surface, what=fields[0])
    pieces = [entity_span(text, *fragment, what=fields[0])["text"] for fragment in fragments]
    if surface is not None and " ".join(pieces) != surface:
        raise RecordError(f"{fields[0]} text {surface!r} differs from its fragments {' '.join(pieces)!r}")
    count(report, "brat discontinuous spans (taken from first start to last end)")
    return make_span(text, fragments[0][0], fragments[-1][1], kind)


def _arguments(fields: list[str]) -> list[tuple[str, str]]:
    """``(role, id)`` of an R or E line's second field (the type or trigger comes first)."""
    arguments = [part.partition(":")[::2] for part in fields[1].split()[1:]]
    if any(not role or not id for role, id in arguments):
        raise RecordError(f"expected ROLE:ID arguments, got {fields[1]!r}")
    return arguments


def _lines(ann: Path, skipped: SkipReport | None) -> Iterator[tuple[int, list[str]]]:
    """The tab-separated fields of each non-blank line, with its number."""
    for number, raw in enumerate(ann.read_bytes().split(b"\n"), start=1):
        try:
            line = raw.decode("utf-8").removesuffix("\r")
        except UnicodeDecodeError:
            _fail(RecordError("not UTF-8 text"), ann, number, skipped)
            continue
        if line.strip():
            yield number, line.split("\t", 2)


def _fail(error: RecordError, ann: Path, number: int, skipped: SkipReport | None) -> None:
    error = RecordError(f"{ann} line {number}: {error.message}")
    if skipped is None:
        raise UserError(str(error))
    skipped.add(error)


def _document(id: str, ann: Path, report: Counter, skipped: SkipReport | None) -> Record:
    text = _read_text(ann.with_suffix(".txt"))
    spans, index, triggers, relations = [], {}, {}, []
    for number, fields in _lines(ann, skipped):
        try:
            kind = fields[0][:1]
            if len(fields) < 2:
                raise RecordError("expected at least two tab-separated fields")
            if kind == "T":
                spans.append(_entity(fields, text, report))
                index[fields[0]] = len(spans) - 1
            elif kind == "E":
                trigger, *arguments = fields[1].split() or [""]
                if not trigger.partition(":")[2]:
                    raise RecordError(f"expected TYPE:TRIGGER first, got {fields[1]!r}")
                triggers[fields[0]] = trigger.partition(":")[2]
                count(report, "brat event arguments (not converted)", len(arguments))
            elif kind == "R":
                arguments = dict(_arguments(fields))
                if len(arguments) != 2:
                    raise RecordError(f"expected two arguments, got {fields[1]!r}")
                roles = sorted(arguments) if set(arguments) == {"Arg1", "Arg2"} else list(arguments)
                relations.append((number, fields[1].split()[0], [arguments[role] for role in roles]))
            elif kind in _IGNORED:
                count(report, f"brat {_IGNORED[kind]} lines ignored")
            else:
                raise RecordError(f"unknown annotation id {fields[0]!r} (expected T, R, E, A, M, *, # or N lines)")
        except RecordError as exc:
            _fail(exc, ann, number, skipped)
    count(report, "brat events (E) read for their triggers", len(triggers))
    triplets = []
    for number, label, arguments in relations:
        try:
            head, tail = (_resolve(argument, index, triggers, report) for argument in arguments)
        except RecordError as exc:
            _fail(exc, ann, number, skipped)
            continue
        triplets.append((head, label, tail))
    return document_record(id, text, spans, triplets, report)


def _resolve(argument: str, index: dict, triggers: dict, report: Counter) -> int:
    if argument in index:
        return index[argument]
    if argument in triggers and triggers[argument] in index:
        count(report, "brat relation arguments that are events (their trigger span used)")
        return index[triggers[argument]]
    if argument in triggers:
        raise RecordError(f"argument {argument} is an event whose trigger {triggers[argument]} is not a T line here")
    raise RecordError(f"argument {argument} is not a T or E annotation of this file")


def read(path: Path, report: Counter, skipped: SkipReport | None = None) -> Iterator[Record]:
    """One end-to-end record per ``.ann`` of ``path`` (a directory or an ``.ann`` file)."""
    for id, ann in _documents(path, report):
        if not ann.exists():
            raise UserError(f"no such file: {ann}")
        yield _document(id, ann, report, skipped)
