"""Triplet linearisation, tolerant parsing, prompts and greedy generation on tiny random models."""

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relcli.slots import CopyConstraint, RelationConstraint, copied, entity_regions
from relcli.records import validate_record
from relcli.triplet_extract import generate_triplets
from scripted import Scripted, byte_tokenizer

from relcli.triplets import (
    REBEL_TOKENS,
    linearize,
    parse,
    relations_of,
    triplet_completion,
    triplet_prompt,
)

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def span(text, surface, type=None, nth=0):
    start = -1
    for _ in range(nth + 1):
        start = text.index(surface, start + 1)
    return {"text": surface, "start": start, "end": start + len(surface), "type": type}


def record(id, text, *triples):
    return {
        "id": id,
        "text": text,
        "triplets": [
            {"head": span(text, h, ht), "relation": r, "tail": span(text, t, tt)} for h, ht, r, t, tt in triples
        ],
    }


# From CoNLL04 dev (SpERT split) and the REBEL sample.
BOOTH = record(
    "conll04-dev-1771",
    "Marie Magdefrau Ferraro , 50 , of Bethany , Conn. , was shot to death Thursday .",
    ("Marie Magdefrau Ferraro", "Peop", "Live_In", "Bethany", "Loc"),
    ("Marie Magdefrau Ferraro", "Peop", "Live_In", "Conn.", "Loc"),
    ("Bethany", "Loc", "Located_In", "Conn.", "Loc"),
)
DAYTON = record(
    "conll04-dev-950",
    "DAYTON , Ohio ( AP )",
    ("DAYTON", "Loc", "Located_In", "Ohio", "Loc"),
    ("AP", "Org", "OrgBased_In", "DAYTON", "Loc"),
    ("AP", "Org", "OrgBased_In", "Ohio", "Loc"),
)
JOURNAL = record(
    "rebel-30113940",
    "Transportation Journal is an academic journal devoted to transportation, logistics and related fields. "
    "The journal is published quarterly by the Penn State University Press.",
    ("Transportation Journal", None, "publisher", "Penn State University Press", None),
    ("Transportation Journal", None, "instance of", "academic journal", None),
)
RECORDS = [BOOTH, DAYTON, JOURNAL]


def untyped(triplets):
    return [{**t, "head": {**t["head"], "type": None}, "tail": {**t["tail"], "type": None}} for t in triplets]


def test_records_are_valid():
    for r in RECORDS:
        validate_record(r)


@pytest.mark.parametrize("style", ["rebel", "json"])
@pytest.mark.parametrize("rec", RECORDS, ids=lambda r: r["id"])
def test_round_trip_keeps_triplets_and_offsets(style, rec):
    triplets, malformed = parse(linearize(rec["triplets"], style), rec["text"], style, relations_of(RECORDS))
    assert malformed == 0
    assert triplets == untyped(rec["triplets"])
    validate_record({**rec, "predicted_triplets": triplets})


def test_rebel_shares_consecutive_heads_in_text_order():
    shuffled = [DAYTON["triplets"][i] for i in (2, 0, 1)]
    assert linearize(shuffled, "rebel") == (
        "<triplet> DAYTON <subj> Ohio <obj> Located_In "
        "<triplet> AP <subj> Ohio <obj> OrgBased_In <subj> DAYTON <obj> OrgBased_In"
    )


def test_json_is_compact_and_in_head_order():
    assert linearize(list(reversed(DAYTON["triplets"])), "json") == (
        '[{"head":"DAYTON","relation":"Located_In","tail":"Ohio"},'
        '{"head":"AP","relation":"OrgBased_In","tail":"Ohio"},'
        '{"head":"AP","relation":"OrgBased_In","tail":"DAYTON"}]'
    )


def test_same_surface_head_at_two_places_is_written_twice():
    text = "Paris , Texas is not Paris , France ."
    triplets = [
        {"head": span(text, "Paris"), "relation": "in", "tail": span(text, "Texas")},
        {"head": span(text, "Paris", nth=1), "relation": "in", "tail": span(text, "France")},
    ]
    assert linearize(triplets, "rebel").count("<triplet>") == 2
    # Parsing places each head at the occurrence closest to its tail.
    parsed, _ = parse(linearize(triplets, "rebel"), text, "rebel")
    assert untyped(parsed) == triplets


def test_empty_inputs():
    assert linearize([], "rebel") == "" and linearize([], "json") == "[]"
    assert parse("", "x", "rebel") == ([], 0)
    assert parse("[]", "x", "json") == ([], 0)
    assert parse("", "x", "json") == ([], 1)


def test_offsets_are_null_when_surface_form_is_absent():
    (t,), malformed = parse("<triplet> Lincoln <subj> Kentucky <obj> born_in", "Lincoln was born.", "rebel")
    assert malformed == 0
    assert t["head"] == {"text": "Lincoln", "start": 0, "end": 7, "type": None}
    assert t["tail"] == {"text": "Kentucky", "start": None, "end": None, "type": None}


@pytest.mark.parametrize(
    "generation, n_ok, n_bad",
    [
        ("<triplet> A <subj> B <obj> r <subj> C <obj>", 1, 1),  # empty relation at the end
        ("<triplet> A <subj> B <obj> r <triplet> D <subj> E", 1, 1),  # truncated before <obj>
        ("<triplet> A <obj> r <triplet> D <subj> E <obj> s", 1, 1),  # missing <subj>
        ("<triplet> A <subj> B <subj> C <obj> r", 1, 1),  # missing <obj>
        ("<triplet> A <triplet> D <subj> E <obj> s", 1, 1),  # head without triplets
        ("<subj> B <obj> r", 0, 1),  # no head at all
        ("<triplet> <subj> B <obj> r", 0, 1),  # empty head
        ("Sure! <triplet> A <subj> B <obj> r", 1, 1),  # chatter before
        ("<triplet> A <subj> B <obj> r <triplet> A <subj> B <obj> r", 1, 0),  # duplicate dropped
        ("\x00\xff garbage <<obj>>", 0, 2),
    ],
)
def test_rebel_malformed(generation, n_ok, n_bad):
    triplets, malformed = parse(generation, "A B C D E", "rebel")
    assert (len(triplets), malformed) == (n_ok, n_bad)


@pytest.mark.parametrize(
    "generation, n_ok, n_bad",
    [
        ('Here you go:\n```json\n[{"head": "A", "relation": "r", "tail": "B"}]\n```\nHope it helps!', 1, 0),
        ('Triplets [see below]: [{"head": "A", "relation": "r", "tail": "B"}]', 1, 0),
        ('Step [1]: [{"head": "A", "relation": "r", "tail": "B"}]', 1, 0),
        ('[{"head": "A", "relation": "r", "tail": "B"}, {"head": "C", "rel', 1, 1),  # truncated
        ('[{"head": "A", "relation": "r", "tail": "B"}', 1, 1),  # unbalanced
        ('[{"head": "A", "relation": "r", "tail": "B"}]]}', 1, 0),
        ('[{"head": "A", "relation": "r"}, {"head": "A", "relation": 3, "tail": "B"}, "A r B"]', 0, 3),
        ('[{"head": "A", "relation": "r", "tail": "B"}, {"head": "A", "relation": "r", "tail": "B"}]', 1, 0),
        ("There are no relations in this text.", 0, 1),
        ("[[[[[[[[", 0, 1),
        ("[" * 5000, 0, 1),
        ('[{"head": ' * 300, 0, 1),
        ('[{"head": "A", "relation": "r", "tail": "B"},]', 1, 1),
    ],
)
def test_json_malformed(generation, n_ok, n_bad):
    triplets, malformed = parse(generation, "A B C", "json")
    assert (len(triplets), malformed) == (n_ok, n_bad)


@pytest.mark.parametrize("style", ["rebel", "json"])
def test_inventory_drops_and_counts_unknown_relations(style):
    gold = BOOTH["triplets"]
    generation = linearize(gold, style)
    triplets, malformed = parse(generation, BOOTH["text"], style, ["Live_In"])
    assert [t["relation"] for t in triplets] == ["Live_In", "Live_In"]
    assert malformed == 1


def test_unknown_style_is_rejected():
    with pytest.raises(ValueError):
        linearize([], "xml")


fragments = st.sampled_from(REBEL_TOKENS + ["[", "]", "{", "}", '"head"', '"relation"', '"tail"', ":", ",", '"A"', " "])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=8), fragments), max_size=30), st.sampled_from(["rebel", "json"]))
def test_parse_never_raises(pieces, style):
    triplets, malformed = parse("".join(pieces), "A text with A in it.", style, ["r"])
    assert malformed >= 0
    for t in triplets:
        assert t["relation"] == "r" and t["head"]["text"] and t["tail"]["text"]


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200), st.sampled_from(["rebel", "json"]))
def test_parse_never_raises_on_random_bytes(data, style):
    parse(data.decode("utf-8", errors="replace"), "text", style)


def test_prompt_zero_and_few_shot():
    zero = triplet_prompt(DAYTON, "json", ["Located_In", "OrgBased_In"])
    assert "Located_In, OrgBased_In" in zero and "JSON" in zero
    assert zero.endswith("Text: DAYTON , Ohio ( AP )\nTriplets:\n")
    few = triplet_prompt(DAYTON, "rebel", [], shots=[BOOTH, JOURNAL])
    assert "Relations:" not in few
    assert few.index(BOOTH["text"]) < few.index(JOURNAL["text"]) < few.index(DAYTON["text"])
    assert triplet_completion(BOOTH, "rebel") in few and triplet_completion(JOURNAL, "rebel") in few
    assert len(few) < 1000


def test_completion_and_inventory():
    assert triplet_completion(JOURNAL, "rebel") == (
        "<triplet> Transportation Journal <subj> Penn State University Press <obj> publisher "
        "<subj> academic journal <obj> instance of"
    )
    assert triplet_completion({"id": 1, "text": "x", "triplets": []}, "json") == "[]"
    assert relations_of(RECORDS) == ["Live_In", "Located_In", "OrgBased_In", "instance of", "publisher"]


# Tiny random models. <obj> is id 0, so a model whose logits are all zero greedily emits <obj>.
WORDS = "A B Kill Live_In Text : Triplets Zed".split()
RELATIONS = ["Kill", "Live_In"]


@pytest.fixture(scope="module")
def tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = ["<obj>", "<pad>", "</s>", "<unk>", "<triplet>", "<subj>"]
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(specials + WORDS)}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        additional_special_tokens=REBEL_TOKENS,
    )


@pytest.fixture(scope="module")
def llama(tokenizer):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=1, pad_token_id=1, eos_token_id=2, bos_token_id=2,
    )  # fmt: skip
    return LlamaForCausalLM(config)


@pytest.fixture(scope="module")
def t5(tokenizer):
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    torch.manual_seed(0)
    config = T5Config(
        vocab_size=len(tokenizer), d_model=16, d_ff=32, d_kv=8, num_layers=1, num_heads=2,
        pad_token_id=1, eos_token_id=2, decoder_start_token_id=1,
    )  # fmt: skip
    return T5ForConditionalGeneration(config)


@pytest.mark.parametrize("model_name", ["llama", "t5"])
def test_generate_returns_one_string_per_prompt(request, tokenizer, model_name):
    model = request.getfixturevalue(model_name)
    prompts = ["Text : A B Triplets :", "A", "Text : B Kill A Live_In B Triplets :"]
    training = model.training
    out = generate_triplets(model, tokenizer, prompts, max_new_tokens=5, batch_size=2)
    assert len(out) == 3 and all(isinstance(s, str) for s in out)
    assert all("<pad>" not in s and "</s>" not in s for s in out)
    # Batching and left padding do not change greedy outputs.
    assert out == [generate_triplets(model, tokenizer, [p], max_new_tokens=5)[0] for p in prompts]
    assert model.training is training and tokenizer.padding_side == "right"


def test_relation_constraint_allows_only_inventory_continuations(tokenizer):
    import torch

    ids = tokenizer.convert_tokens_to_ids
    constraint = RelationConstraint(tokenizer, RELATIONS, prompt_length=2)
    rows = [
        ["A", "<obj>", "<triplet>", "A", "<subj>", "A", "B", "<obj>"],  # in the slot: a relation starts
        ["A", "<obj>", "<triplet>", "A", "<subj>", "B", "<obj>", "Kill"],  # complete: a marker or eos
        ["A", "<obj>", "<triplet>", "A", "<subj>", "B", "A", "B"],  # the prompt's <obj> is ignored: free
    ]
    input_ids = torch.tensor([ids(r) for r in rows])
    scores = constraint(input_ids, torch.zeros(len(rows), len(tokenizer)))
    allowed = [set(torch.nonzero(row > float("-inf")).flatten().tolist()) for row in scores]
    assert allowed[0] == set(ids(RELATIONS))
    assert allowed[1] == set(ids(REBEL_TOKENS + ["</s>"]))
    assert allowed[2] == set(range(len(tokenizer)))


def test_generate_with_relation_constraint(tokenizer, llama):
    import torch

    with torch.no_grad():
        saved = llama.lm_head.weight.clone()
        llama.lm_head.weight.zero_()
    try:
        free = generate_triplets(llama, tokenizer, ["A B"], max_new_tokens=4)
        constrained = generate_triplets(llama, tokenizer, ["A B"], max_new_tokens=4, relation_constraint=RELATIONS)
    finally:
        with torch.no_grad():
            llama.lm_head.weight.copy_(saved)
    assert free == ["<obj> <obj> <obj> <obj>"]
    assert constrained == ["<obj> Kill <obj> Kill"]


def test_relation_constraint_needs_rebel_tokens():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from relcli.errors import UserError

    backend = Tokenizer(models.WordLevel({"<unk>": 0, "A": 1}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    with pytest.raises(UserError):
        RelationConstraint(PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>"), ["A"], 0)


def test_rebel_sample_round_trips():
    path = DATA / "rebel" / "sample.jsonl"
    if not path.exists():
        pytest.skip(f"REBEL sample not found at {path}")
    exact = total = 0
    for line in path.read_text(encoding="utf-8").splitlines()[:300]:
        doc = json.loads(line)
        text = doc["text"]
        gold = [
            {
                "head": {"text": t["subject"]["surfaceform"], "start": t["subject"]["boundaries"][0],
                         "end": t["subject"]["boundaries"][1], "type": None},
                "relation": t["predicate"]["surfaceform"],
                "tail": {"text": t["object"]["surfaceform"], "start": t["object"]["boundaries"][0],
                         "end": t["object"]["boundaries"][1], "type": None},
            }
            for t in doc["triples"]
            if t["subject"]["boundaries"] and t["object"]["boundaries"]
        ]  # fmt: skip
        for style in ("rebel", "json"):
            parsed, malformed = parse(linearize(gold, style), text, style)
            assert malformed == 0
            key = lambda t: (t["head"]["text"], t["relation"], t["tail"]["text"])  # noqa: E731
            assert sorted(set(map(key, parsed))) == sorted(set(map(key, gold)))
        parsed_offsets = {(t["head"]["start"], t["relation"], t["tail"]["start"]) for t in parsed}
        exact += sum((t["head"]["start"], t["relation"], t["tail"]["start"]) in parsed_offsets for t in gold)
        total += len(gold)
    # REBEL's annotated mention is not always the one closest to its partner (measured: 75.9 %).
    assert exact / total > 0.7


def test_offsets_prefer_occurrences_between_words():
    (t,), _ = parse('[{"head": "Paris", "relation": "r", "tail": "Bob"}]', "Parisian Bob of Paris", "json")
    assert (t["head"]["start"], t["tail"]["start"]) == (16, 9)
    (t,), _ = parse('[{"head": "Par", "relation": "r", "tail": "Bob"}]', "Parisian Bob of Paris", "json")
    assert t["head"]["start"] == 16  # none between words: every occurrence counts, the closest wins


def test_offset_ties_take_the_earliest_pair():
    # "A" at 2 is as close to the "B" at 0 as to the one at 4: the earliest pair wins.
    (t,), _ = parse("<triplet> A <subj> B <obj> r", "B A B", "rebel")
    assert (t["head"]["start"], t["tail"]["start"], t["tail"]["end"]) == (2, 0, 1)


# --- copy constraints ------------------------------------------------------------------------


@pytest.mark.parametrize("generation, regions", [
    ("<triplet> A <subj> B <obj> r <subj> C", [(" A ", True), (" B ", True), (" C", False)]),
    ("chatter <triplet> Ann <su", [(" Ann ", False)]),  # a marker being spelt out is not the entity's
    ("<triplet> A <subj> B <obj> r", [(" A ", True), (" B ", True)]),
    ("<triplet> A <obj> r <triplet>", [(" A ", True), ("", False)]),
    ("no markers at all", []),
])
def test_entity_regions_rebel(generation, regions):
    assert [(value, closed) for _, value, closed in entity_regions(generation, "rebel")] == regions


@pytest.mark.parametrize("generation, regions", [
    ('[{"head": "A \\"b\\"", "relation": "r", "tail": "Bo', [('A "b"', True), ("Bo", False)]),
    ('[{"head":"caf\\u00e9","relation":"r","tail":"caf\\u00', [("café", True), ("caf", False)]),
    ('[{"head":"\\ud83d\\ude00"', [("\U0001F600", True)]),  # a surrogate pair is one character
    ('[{"head":"a\\qb"', [(None, False)]),  # not JSON: can never be an entity
    ('[{"relation":"r, \\"head\\": \\"x", "head": "', [("", False)]),  # an escaped key is text, not a key
    ('Sure: {"head" : "A\\', [("A", False)]),  # an escape cut off while written
])
def test_entity_regions_json(generation, regions):
    found = entity_regions(generation, "json")
    assert [(value, closed) for _, value, closed in found] == regions


@pytest.mark.parametrize("value, closed, ok", [
    (" Ann ", True, True), ("Ann met", True, True), ("Ann  met", True, False), ("", True, False), ("  ", True, False),
    ("Bob", True, False), (None, True, False), ("Zoé", True, False), ("Zoë", True, True), (" 1-2 ,", True, True),
    # between words only: not "Zo" of "Zoë", not "M" of "Mechanics", not "10" of "100"
    ("Zo", True, False), ("M", True, False), ("10", True, False), ("Mechanics", True, True), ("東京", True, True),
    # open: may still grow into a span, padded by at most one space on each side
    (" An", False, True), ("Zo", False, True), ("nn", False, False), ("", False, True), (" ", False, True),
    ("  ", False, False), ("Ann  ", False, False), ("  A", False, False), ("Zoë", False, True), ("Zoé", False, False),
    # a space after a region that can close there (REBEL's "東京都 <obj>"), even at the end of the text
    ("東京都 ", False, True), ("Mechanic ", False, False),
    # the first bytes of a character: only where the text has a non-ASCII character next
    ("Zo\ufffd", False, True), ("Z\ufffd", False, False), ("\ufffd", False, True), ("Zo\ufffd\ufffd", False, False),
    ("An\ud83d", False, False),
])
def test_copied(value, closed, ok):
    assert copied(value, closed, "Ann met Zoë on 1-2 , 100 Mechanics . Émile 東京都") is ok


@pytest.mark.parametrize("model_name", ["llama", "t5"])
def test_copy_constraint_rebel_generation(request, tokenizer, model_name):
    """The model wants "Zed", which is not in the first text: with copy constraints that row takes
    its next choice, "A"; the second row, whose text has "Zed", keeps it."""
    model = request.getfixturevalue(model_name)
    ids = lambda words: tokenizer.convert_tokens_to_ids(words.split())  # noqa: E731
    script = [ids("<triplet>"), ids("Zed A"), ids("<subj>"), ids("B"), ids("<obj>"), ids("Kill"), ids("</s>")]
    prompts, texts = ["Text : A B Triplets :", "Text : Zed B Triplets :"], ["A B", "Zed B"]

    def run(**options):
        with Scripted(model, script, len(tokenizer)) as scripted:
            return generate_triplets(scripted, tokenizer, prompts, max_new_tokens=8, style="rebel", **options)

    assert run() == ["<triplet> Zed <subj> B <obj> Kill"] * 2
    copied_out = run(copy_from=texts)
    assert copied_out == ["<triplet> A <subj> B <obj> Kill", "<triplet> Zed <subj> B <obj> Kill"]
    assert run(copy_from=texts, relation_constraint=RELATIONS) == copied_out
    for out, text in zip(copied_out, texts):
        (t,), malformed = parse(out, text, "rebel", RELATIONS)
        assert malformed == 0 and text[t["head"]["start"] : t["head"]["end"]] == t["head"]["text"]


def test_copy_constraint_ends_a_row_that_cannot_copy(tokenizer, llama):
    """Nothing can start a head copied from an empty text: the row ends and the fragment is
    dropped as malformed, not kept as a triplet with an invented entity."""
    ids = lambda words: tokenizer.convert_tokens_to_ids(words.split())  # noqa: E731
    script = [ids("<triplet>"), ids("Zed A"), ids("<subj>"), ids("B"), ids("<obj>"), ids("Kill")]
    with Scripted(llama, script, len(tokenizer)) as scripted:
        out = generate_triplets(scripted, tokenizer, ["A B"], max_new_tokens=8, copy_from=[""], style="rebel")
    assert out == ["<triplet>"] and parse(out[0], "", "rebel") == ([], 1)


def test_copy_constraint_json_generation():
    """JSON, one character per token: "Xed" is not in the text; with copy constraints each of its
    characters gives way to the model's second choice, and "Ann" is copied; "Zoë", two tokens for
    "ë", is copied byte by byte."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = byte_tokenizer()
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
        num_key_value_heads=1, pad_token_id=0, eos_token_id=1, bos_token_id=1))
    encode = lambda s: tokenizer(s, add_special_tokens=False).input_ids  # noqa: E731
    wanted = encode('[{"head":"Xed","relation":"Kill","tail":"Zoë"}]')
    second = encode('[{"head":"Ann","relation":"Kill","tail":"Zoë"}]')
    script = [[w] if w == s else [w, s] for w, s in zip(wanted, second)] + [[tokenizer.eos_token_id]]
    text = "Ann met Zoë ."

    def run(copy_from=None):
        with Scripted(model, script, len(tokenizer)) as scripted:
            (out,) = generate_triplets(scripted, tokenizer, ["Text: Ann met Zoë .\nTriplets:\n"],
                                       max_new_tokens=len(script), copy_from=copy_from, style="json")
        return parse(out, text, "json", ["Kill"])

    (free,), _ = run()
    assert free["head"] == {"text": "Xed", "start": None, "end": None, "type": None}
    (copied_triplet,), malformed = run([text])
    assert malformed == 0
    assert copied_triplet["head"] == {"text": "Ann", "start": 0, "end": 3, "type": None}
    assert copied_triplet["tail"] == {"text": "Zoë", "start": 8, "end": 11, "type": None}


def test_copy_constraint_keeps_rows_outside_entities_free(tokenizer):
    """Outside a head or tail the best token stays the best; inside one only copies and the
    closing marker remain, and end of sequence is refused while a head is open."""
    import torch

    ids = tokenizer.convert_tokens_to_ids
    constraint = CopyConstraint(tokenizer, ["A B", "A B", "A B"], "rebel", prompt_length=1)
    rows = [
        ["Text", "<triplet>", "A", "<subj>", "B", "<obj>"],  # relation slot: free
        ["Text", "<obj>", "<obj>", "<obj>", "<triplet>", "A"],  # head "A" open
        ["Text", "<obj>", "<obj>", "<obj>", "<obj>", "<triplet>"],  # head empty
    ]
    scores = torch.zeros(3, len(tokenizer))
    scores[:, ids("Zed")] = 5.0
    scores[:, ids("</s>")] = 4.0
    scores[:, ids("B")] = 3.0
    scores[:, ids("<subj>")] = 2.0
    chosen = constraint(torch.tensor([ids(r) for r in rows]), scores).argmax(-1).tolist()
    assert chosen == ids(["Zed", "B", "B"])


def test_copy_constraint_copies_on_where_the_texts_tokens_cannot():
    """The text's own tokens have "Ġconfig"+"uration"; a head begun as "c"+"on" grows only with
    "fig", which no token of the text is: it comes from tokenising what follows "con" in the text."""
    import torch
    from conftest import _tokenizer

    tokenizer = _tokenizer(eos_after_input=False)
    text = "The system has its greatest application in an arrayed configuration of antenna elements."
    generated = tokenizer('[{"head":"con', add_special_tokens=False).input_ids
    assert tokenizer.convert_ids_to_tokens(generated[-2:]) == ["c", "on"]
    assert "fig" not in tokenizer.tokenize(text) + tokenizer.tokenize(" " + text)
    scores = torch.zeros(1, len(tokenizer))
    scores[0, tokenizer.convert_tokens_to_ids(tokenizer.tokenize(text))[:16]] = 5.0  # all would leave the text
    constraint = CopyConstraint(tokenizer, [text], "json", prompt_length=0)
    chosen = constraint(torch.tensor([generated]), scores).argmax(-1).item()
    assert tokenizer.convert_ids_to_tokens(chosen) == "fig"
