"""Prompt templates and their rendering: records in, prompt/completion pairs out.

A template is a Python format string over named fields (see FIELDS). The builtin ``simple`` is
the paper's Figure 3 prompt verbatim, ``rag`` is RAG4RE's prompt with retrieved examples (each
with its label), and ``compact`` is a short prompt for fine-tuned models that already know the
label set.
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

from relcli.errors import UserError
from relcli.records import Record, chunks, mark_entities

SIMPLE = """Problem Definition:
Relation extraction is to identify the relationship between two entities in a sentence.

Question:
What is the relation type between tail and head entities according to given relationships below in the following sentence?

Query Sentence: {sentence}
Head: {head}
Tail: {tail}
Relation types: {relation_list}

output format: relation_type"""

RAG = """Problem Definition:
Relation extraction is to identify the relationship between two entities in a sentence.

Question:
What is the relation type between tail and head entities according to given relationships below in the following sentence?

{examples}

Query Sentence: {sentence}
Head: {head}
Tail: {tail}
Relation types: {relation_list}

output format: relation_type"""

COMPACT = """{marked_sentence}
Head: {head}
Tail: {tail}
Relation:
"""

COMPACT_RAG = """{examples}

{marked_sentence}
Head: {head}
Tail: {tail}
Relation:
"""

BUILTIN = {"simple": SIMPLE, "rag": RAG, "compact": COMPACT, "compact-rag": COMPACT_RAG}
FIELDS = {
    "sentence", "marked_sentence", "head", "tail", "head_type", "tail_type", "relation_list", "examples",
}


def load_template(spec: str) -> str:
    """A builtin template name, a file holding a template, or the template text itself (as stored
    in an adapter's relcli.json)."""
    if spec in BUILTIN:
        return BUILTIN[spec]
    if "{" in spec:
        return check_template(spec)
    path = Path(spec)
    if not path.is_file():
        raise UserError(f"--template {spec!r} is neither a builtin ({', '.join(BUILTIN)}) nor a file")
    return check_template(path.read_text(encoding="utf-8"))


def template_fields(template: str) -> set[str]:
    try:
        return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as exc:
        raise UserError(f"bad template: {exc}") from None


def check_template(template: str) -> str:
    unknown = template_fields(template) - FIELDS
    if unknown:
        raise UserError(f"unknown template field(s) {sorted(unknown)}; known: {sorted(FIELDS)}")
    return template


def needs_examples(template: str) -> bool:
    return "examples" in template_fields(template)


def format_examples(neighbours: Sequence[Record], compact: bool = False) -> str:
    """Retrieved training examples, each with its sentence, entities and relation label."""
    blocks = []
    for example in neighbours:
        if compact:
            blocks.append(f"{mark_entities(example)}\nRelation: {example.get('relation')}")
        else:
            blocks.append(
                f"Example Sentence: {example['text']}\nHead: {example['head']['text']}\n"
                f"Tail: {example['tail']['text']}\nRelation: {example.get('relation')}"
            )
    return "\n\n".join(blocks)


def render(template: str, record: Record, labels: Sequence[str], examples: Sequence[Record] = ()) -> str:
    """Fill the template's fields from one RC record."""
    fields = template_fields(template)
    values = {
        "sentence": record["text"],
        "head": record["head"]["text"],
        "tail": record["tail"]["text"],
        "head_type": record["head"].get("type") or "",
        "tail_type": record["tail"].get("type") or "",
        "relation_list": ", ".join(labels),
    }
    if "marked_sentence" in fields:
        values["marked_sentence"] = mark_entities(record)
    if "examples" in fields:
        values["examples"] = format_examples(examples, compact="marked_sentence" in fields)
    return template.format(**values)


def prompt_records(
    records: Iterable[Record],
    template: str,
    labels: Sequence[str],
    template_name: str,
    labels_spec: str | list[str],
    examples_for: Callable[[list[Record]], list[list[Record]]] | None = None,
    batch_size: int = 256,
) -> Iterator[Record]:
    """Records in, ``{"id", "prompt", "completion", "template", "labels"}`` out.

    ``completion`` is the gold label. ``template``/``labels`` say how the prompt was made, so
    `finetune` can store them with the adapter and `extract` renders the same prompt later.
    ``examples_for`` (retrieval) maps a batch of records to their neighbours.
    """
    wanted = set(labels)
    for batch in chunks(records, batch_size):
        for record in batch:
            if "head" not in record:
                raise UserError(f"record {record['id']}: prompts needs RC records with head and tail")
            gold = record.get("relation")
            if gold is not None and gold not in wanted:
                raise UserError(f"record {record['id']}: label {gold!r} is not in the label inventory")
        neighbours = examples_for(batch) if examples_for else [()] * len(batch)
        for record, examples in zip(batch, neighbours):
            yield {
                "id": record["id"],
                "prompt": render(template, record, labels, examples),
                "completion": record.get("relation"),
                "template": template_name,
                "labels": labels_spec,
            }
