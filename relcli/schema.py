"""Relation schemas: what each relation means and which entity types it joins.

A schema file (JSON, or YAML where the name ends in .yaml/.yml or the text is not JSON) holds::

    {
      "negative": "no_relation",
      "relations": {
        "Work_For": {"description": "the head works for the tail",
                     "head_types": ["Peop"], "tail_types": ["Org"], "symmetric": false},
        "Kill": {"description": "the head killed the tail", "head_types": ["Peop"], "tail_types": ["Peop"]},
        "Located_In": "the head lies inside the tail"
      }
    }

- ``relations`` maps each relation (in the order labels are listed) to its definition: an object
  with any of ``description`` (text, used by prompt templates with ``{relation_definitions}``),
  ``head_types`` and ``tail_types`` (the entity types allowed as the first and second argument; a
  missing or empty list allows any type), ``symmetric`` (the relation also fits with head and tail
  swapped; default false) and ``seen`` (counts written by ``relcli schema``, ignored on reading);
  or a string, its description; or nothing (null), a relation with no constraint.
- ``negative`` is the label of a pair with no relation (default ``no_relation``); it is always
  allowed and is not listed under ``relations``.

The label inventory of a schema is its relations in file order, then the negative. For a record,
``Schema.allowed`` lists the labels whose types fit the pair: a span without a type fits any type.
``infer`` writes such a file from labelled records, with the types seen per relation and their
counts, for the user to edit.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from relcli.errors import UserError
from relcli.records import Record

DEFAULT_NEGATIVE = "no_relation"
RELATION_KEYS = ("description", "head_types", "tail_types", "symmetric", "seen")


@dataclass(frozen=True)
class Relation:
    description: str = ""
    head_types: frozenset[str] = frozenset()  # empty: any type
    tail_types: frozenset[str] = frozenset()
    symmetric: bool = False

    def fits(self, head: str | None, tail: str | None) -> bool:
        def ok(kind: str | None, types: frozenset[str]) -> bool:
            return kind is None or not types or kind in types

        return (ok(head, self.head_types) and ok(tail, self.tail_types)) or (
            self.symmetric and ok(tail, self.head_types) and ok(head, self.tail_types))


@dataclass
class Schema:
    relations: dict[str, Relation]
    negative: str = DEFAULT_NEGATIVE
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def labels(self) -> list[str]:
        """The label inventory: the relations in file order, then the negative."""
        return [*self.relations, self.negative]

    def allowed(self, record: Record) -> list[str]:
        """The labels (inventory order) whose argument types fit the record's pair; the negative always."""
        head, tail = (_type(record.get(role)) for role in ("head", "tail"))
        key = (head, tail)
        if key not in self._cache:
            self._cache[key] = [name for name, rel in self.relations.items() if rel.fits(head, tail)] + [self.negative]
        return self._cache[key]

    def definitions(self) -> str:
        """One line per relation, ``name: description (head: T1|T2, tail: T3)``, then the negative."""
        lines = []
        for name, rel in self.relations.items():
            types = [f"{role}: {'|'.join(sorted(kinds))}" for role, kinds in (("head", rel.head_types), ("tail", rel.tail_types)) if kinds]
            if rel.symmetric:
                types.append("symmetric")
            text = f"{name}: {rel.description}" if rel.description else name
            lines.append(text + (f" ({', '.join(types)})" if types else ""))
        lines.append(f"{self.negative}: none of the relations above holds between head and tail")
        return "\n".join(lines)

    def check_within(self, inventory: list[str], what: str) -> None:
        """Refuse a schema naming labels that ``inventory`` (a model's labels) does not have."""
        missing = [label for label in self.labels if label not in inventory]
        if missing:
            raise UserError(f"the schema's labels {missing[:5]} are not among the labels of {what}", param="schema")


def _type(span: Any) -> str | None:
    kind = span.get("type") if isinstance(span, dict) else None
    return kind if isinstance(kind, str) and kind else None


def _parse(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}: no such schema file", param="schema") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read schema file {path}: {exc}", param="schema") from None
    yaml_suffix = path.suffix.lower() in (".yaml", ".yml")
    if not yaml_suffix:
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            if path.suffix.lower() == ".json":
                raise UserError(f"{path} is not valid JSON: {exc}", param="schema") from None
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" (line {where.line + 1})" if where is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UserError(f"{path} is neither JSON nor valid YAML: {problem}{at}", param="schema") from None


def _types(value: Any, where: str) -> frozenset[str]:
    if value is None:
        return frozenset()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise UserError(f"{where} must be a list of entity type names", param="schema")
    return frozenset(value)


def _relation(name: str, value: Any, where: str) -> Relation:
    if value is None:
        return Relation()
    if isinstance(value, str):
        return Relation(description=value)
    if not isinstance(value, dict):
        raise UserError(f"{where}: relation {name!r} must be an object or a description string", param="schema")
    unknown = sorted(set(value) - set(RELATION_KEYS))
    if unknown:
        raise UserError(f"{where}: relation {name!r} has unknown key(s) {unknown}; known: {', '.join(RELATION_KEYS)}",
                        param="schema")
    description, symmetric = value.get("description") or "", value.get("symmetric", False)
    if not isinstance(description, str):
        raise UserError(f"{where}: the description of {name!r} must be a string", param="schema")
    if not isinstance(symmetric, bool):
        raise UserError(f"{where}: 'symmetric' of {name!r} must be true or false", param="schema")
    return Relation(" ".join(description.split()), _types(value.get("head_types"), f"{where}: head_types of {name!r}"),
                    _types(value.get("tail_types"), f"{where}: tail_types of {name!r}"), symmetric)


def from_dict(data: Any, where: str = "schema") -> Schema:
    """A Schema from parsed JSON/YAML (see the module doc); every fault is one UserError."""
    if not isinstance(data, dict):
        raise UserError(f"{where} must be an object with 'relations' (and 'negative')", param="schema")
    unknown = sorted(set(data) - {"relations", "negative"})
    if unknown:
        raise UserError(f"{where} has unknown key(s) {unknown}; known: relations, negative", param="schema")
    negative = data.get("negative", DEFAULT_NEGATIVE)
    if not isinstance(negative, str) or not negative.strip():
        raise UserError(f"{where}: 'negative' must be the label of pairs with no relation", param="schema")
    relations = data.get("relations")
    if not isinstance(relations, dict) or not relations:
        raise UserError(f"{where}: 'relations' must map each relation name to its definition", param="schema")
    if negative in relations:
        raise UserError(f"{where}: the negative label {negative!r} is listed among the relations", param="schema")
    if not all(isinstance(name, str) and name.strip() for name in relations):
        raise UserError(f"{where}: relation names must be non-empty strings", param="schema")
    return Schema({name: _relation(name, value, where) for name, value in relations.items()}, negative)


def load(path: str | Path) -> Schema:
    """Read a schema file (JSON or YAML)."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path} is a folder, not a schema file", param="schema")
    return from_dict(_parse(path), str(path))


def infer(records: Iterable[Record], negative: str | None = None) -> dict:
    """A schema (as a dict, ready to write as JSON) from labelled records: per relation the entity
    types seen as head and as tail, with counts under ``seen``. Takes RC records (``relation``) and
    end-to-end records (``triplets``); descriptions are left empty and nothing is marked symmetric."""
    from relcli.labels import negative_label

    seen: dict[str, dict[str, Counter]] = {}
    for record in records:
        if isinstance(record.get("triplets"), list):
            pairs = [(t.get("relation"), t.get("head"), t.get("tail")) for t in record["triplets"]]
        else:
            pairs = [(record.get("relation"), record.get("head"), record.get("tail"))]
        for relation, head, tail in pairs:
            if not isinstance(relation, str):
                continue
            counts = seen.setdefault(relation, {"count": Counter(), "head_types": Counter(), "tail_types": Counter()})
            counts["count"]["all"] += 1
            for role, span in (("head_types", head), ("tail_types", tail)):
                kind = _type(span)
                counts[role if kind else "count"][kind or "untyped_" + role.split("_")[0]] += 1
    negative = negative or negative_label(sorted(seen)) or DEFAULT_NEGATIVE
    seen.pop(negative, None)
    if not seen:
        raise UserError("no labelled relation in the input to infer a schema from")
    relations = {}
    for name in sorted(seen):
        counts = seen[name]
        kinds = {role: dict(counts[role].most_common()) for role in ("head_types", "tail_types")}
        relations[name] = {"description": "", **{role: sorted(kinds[role]) for role in kinds}, "symmetric": False,
                           "seen": {"count": counts["count"]["all"], **kinds,
                                    **{key: n for key, n in counts["count"].items() if key != "all"}}}
    return {"negative": negative, "relations": relations}


def dumps(data: dict) -> str:
    """A schema dict (``infer``'s) as JSON for people to edit: one line per field of a relation."""
    def text(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False)

    relations = []
    for name, definition in data["relations"].items():
        fields = ",\n".join(f"      {text(key)}: {text(value)}" for key, value in definition.items())
        relations.append(f"    {text(name)}: {{\n{fields}\n    }}")
    return f'{{\n  "negative": {text(data["negative"])},\n  "relations": {{\n' + ",\n".join(relations) + "\n  }\n}\n"


def inventory(labels: str | None, schema: str | Path | Schema | None) -> tuple[list[str] | None, Schema | None]:
    """The label inventory and the schema from the two ways of giving them; both at once is refused."""
    from relcli.labels import load_labels

    if labels and schema:
        raise UserError("give the label inventory as a label list or as a schema, not both", param="schema")
    if schema is not None:
        schema = schema if isinstance(schema, Schema) else load(schema)
        return schema.labels, schema
    return (load_labels(labels) if labels else None), None
