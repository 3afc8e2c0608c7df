"""Prompt templates and their rendering: records in, prompt/completion pairs out.

A template is a Python format string over named fields (see FIELDS). The builtin ``simple`` is
the paper's Figure 3 prompt verbatim, ``rag`` is RAG4RE's prompt with retrieved examples (each
with its label), ``compact`` is a short prompt for fine-tuned models that already know the
label set, and ``definitions`` is Figure 3 with each relation's definition from a relation schema
(relcli.schema) between the question and the query sentence.

``{relation_definitions}`` is the same for every record: it is filled in once from the schema
(``with_definitions``), before the per-record fields, so a template recorded with an adapter
carries its definitions as text and extraction needs no schema to render it again.
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from relcli.errors import UserError
from relcli.labels import BUILTIN as LABEL_NAMES, load_labels
from relcli.records import Record, RecordError, chunks, mark_entities
from relcli.triplets import check_completions, parse_template

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

# Figure 3 with the schema's definitions before the query sentence (the paper's text otherwise
# unchanged): placed there, they belong to the prefix every record shares, which extraction computes
# once per batch, so definitions cost almost nothing per record; after the sentence they would double it.
DEFINITIONS = SIMPLE.replace("\n\nQuery Sentence:", "\n\nRelation definitions:\n{relation_definitions}\n\nQuery Sentence:")

BUILTIN = {"simple": SIMPLE, "rag": RAG, "compact": COMPACT, "compact-rag": COMPACT_RAG, "definitions": DEFINITIONS}
FIELDS = {
    "sentence", "marked_sentence", "head", "tail", "head_type", "tail_type", "relation_list", "examples",
    "relation_definitions",
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
        raise UserError(f"{spec!r} is neither a builtin template ({', '.join(BUILTIN)}) nor a file", param="template")
    try:
        return check_template(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read template file {path}: {exc}", param="template") from None


def template_fields(template: str) -> set[str]:
    try:
        return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as exc:
        raise UserError(f"bad template: {exc}", param="template") from None


def check_template(template: str) -> str:
    fields = template_fields(template)
    unknown = fields - FIELDS
    if unknown:
        raise UserError(f"unknown template field(s) {sorted(unknown)}; known: {sorted(FIELDS)}", param="template")
    try:  # conversions and format specs ({head!x}, {head:>d}) fail only when filled in
        template.format(**{name: "" for name in fields})
    except (ValueError, KeyError, IndexError) as exc:
        raise UserError(f"bad template: {exc}", param="template") from None
    return template


def needs_examples(template: str) -> bool:
    return "examples" in template_fields(template)


def with_definitions(template: str, schema=None) -> str:
    """The template with ``{relation_definitions}`` replaced by the schema's definitions (escaped, so
    that the other fields are still filled per record); a template without the field is returned
    as it is."""
    if "relation_definitions" not in template_fields(template):
        return template
    if schema is None:
        raise UserError("the template lists relation definitions ({relation_definitions}): give a relation schema",
                        param="schema")

    def escape(text: str) -> str:
        return text.replace("{", "{{").replace("}", "}}")

    pieces = []
    for literal, name, spec, conversion in string.Formatter().parse(template):
        pieces.append(escape(literal))
        if name == "relation_definitions":
            pieces.append(escape(schema.definitions()))
        elif name is not None:
            pieces.append("{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}")
    return "".join(pieces)


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


def model_input(prompt: str, tokenizer, chat: bool) -> str:
    """The text the model sees: the chat-formatted user turn, or the raw prompt ending in a newline
    (so that the label starts a fresh token in training and in decoding alike)."""
    if chat:
        return tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
        )
    return prompt if prompt[-1:].isspace() else prompt + "\n"


def has_chat_template(tokenizer) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def prompt_stream(records: Iterable[Record], *, task: str = "rc", template: str = "simple", labels: str | None = None,
                  labels_from_data: bool = False, index=None, k: int | None = None, style: str | None = None,
                  shots: int = 0, shots_from: str | None = None, schema=None) -> Iterator[Record]:
    """Prompt/completion records for fine-tuning (``task`` rc or triplets), with the provenance
    (template, labels) that `finetune` records. The inventory is ``labels`` (a builtin name or a
    file), else the labels of ``schema`` (a relation schema file, which also fills
    {relation_definitions}), else with ``labels_from_data`` the sorted gold labels of the records
    (read whole). ``index`` is a relcli index (a folder, or loaded) for templates with {examples} or
    retrieved shots."""
    from relcli.schema import inventory as schema_inventory
    from relcli.triplets import STYLES, relations_of, shots_function, triplet_prompt_records

    if task not in ("rc", "triplets"):
        raise UserError(f"unknown task {task!r} (rc, triplets)", param="task")
    if labels_from_data and (labels or schema):
        raise UserError("the label inventory comes either from the data or from a label list or schema",
                        param="labels_from_data")
    given, schema = schema_inventory(labels, schema)
    if given is not None:
        inventory, spec = given, labels or given
    elif labels_from_data:
        records = list(records)
        inventory = relations_of(records) if task == "triplets" else sorted({r["relation"] for r in records if r.get("relation")})
        spec = inventory
        # (Records of the other task are refused below, with their id.)
        if not inventory and records and all(("triplets" if task == "triplets" else "head") in r for r in records):
            raise UserError("the data has no gold labels to take the inventory from", param="labels_from_data")
    else:
        raise UserError("a label inventory is needed: semeval, tacred, retacred or a file (or the training data's own)",
                        param="labels")
    if task == "triplets":
        if template not in ("simple", "compact"):
            raise UserError("with the triplets task the template is simple or compact", param="template")
        if k is not None:
            raise UserError("does not apply to the triplets task (its demonstrations are the shots)", param="k")
        if (style or "json") not in STYLES:
            raise UserError(f"unknown triplet format {style!r} ({', '.join(STYLES)})", param="style")
        if schema is not None:
            raise UserError("a relation schema's types constrain a given pair; for triplets give the labels",
                            param="schema")
        return triplet_prompt_records(records, style or "json", inventory, compact=template == "compact",
                                      shots_for=shots_function(shots, shots_from, _loaded(index)))
    if style or shots or shots_from:
        raise UserError("the triplet format and shots apply to the triplets task only", param="style" if style else "shots")
    text = with_definitions(load_template(template), schema)
    examples_for = None
    if needs_examples(text):
        if index is None:
            raise UserError(f"template {template!r} needs retrieved examples: give an index", param="index")
        from relcli.retrieval import neighbours_for

        examples_for = neighbours_for(_loaded(index), k or 3)
    elif index is not None or k is not None:
        raise UserError(f"template {template!r} has no {{examples}} field to put retrieved records in",
                        param="index" if index is not None else "k")
    # A template file is recorded by its text, so what trains does not depend on the file later.
    recorded = template if template in BUILTIN and text == BUILTIN[template] else text
    return prompt_records(records, text, inventory, recorded, spec if isinstance(spec, list) or spec in LABEL_NAMES else inventory,
                          examples_for)


def _loaded(index):
    """A relcli index: None, a folder (loaded here) or an Index already loaded."""
    if index is None or hasattr(index, "search"):
        return index
    from relcli.retrieval import Index

    return Index.load(index)


def validate_prompt(obj: Any) -> Record:
    if not isinstance(obj, dict) or not isinstance(obj.get("prompt"), str):
        raise RecordError("a prompt record needs 'prompt' (a string)")
    if not isinstance(obj.get("completion"), str):
        raise RecordError("a prompt record needs 'completion' (the gold label; unlabelled records cannot train)")
    return obj


def describe_prompts(prompts: Sequence[Record], template: str | None = None,
                     labels: str | list[str] | None = None) -> dict[str, Any]:
    """How the prompts were made, as the adapter's relcli.json records it: the task, the template
    text (or the triplet style), and the label inventory. Each comes from the argument when given,
    else from the provenance `relcli prompts` wrote into the first prompt record; the inventory
    falls back to the sorted completions. Completions must fit the inventory."""
    first = prompts[0]
    name = template or first.get("template") or "simple"
    recorded = first.get("labels")
    if isinstance(labels, list):
        inventory = labels
    elif labels:
        inventory = load_labels(labels)
    elif isinstance(recorded, str):
        inventory = load_labels(recorded)
    elif isinstance(recorded, list) and all(isinstance(label, str) for label in recorded):
        inventory = recorded
    else:
        inventory = sorted({p["completion"] for p in prompts})
    triplets = parse_template(name)
    if triplets:
        check_completions(prompts, triplets[0], inventory)
        return dict(task="triplets", style=triplets[0], compact=triplets[1], template_name=name, labels=inventory)
    unknown = {p["completion"] for p in prompts} - set(inventory)
    if unknown:
        raise UserError(f"completions not in the label inventory: {sorted(unknown)[:5]}", param="labels")
    return dict(task="rc", template=load_template(name), template_name=name, labels=inventory)
