"""Decoding on tiny models: constrained decoding stays in the label set, free generation is mapped
(and counted when it names no label), --explain scores, order and batching, and training and
decoding see the same tokens."""

from __future__ import annotations

import itertools

import pytest
from conftest import RECORDS, rc

from relcli import extract
from relcli.extract import Generator, map_to_label
from relcli.decoding import WIDTH_STEP, LabelTrie, common_prefix
from relcli.errors import UserError
from relcli.finetune import encode_causal, encode_seq2seq
from relcli.labels import SEMEVAL, TACRED
from relcli.models import load_model
from relcli.prompts import BUILTIN, format_examples, render

NOUNS = "ridge surge child cradle author system burst pressure composer student code site".split()
MANY = [
    rc(f"m{i}", f"The {a} {'was' if i % 2 else 'has been'} seen{' far' * (i % 5)} near the {b}.", a, b, None, note=i)
    for i, (a, b) in enumerate(itertools.permutations(NOUNS[:7], 2))
]  # 42 records of various lengths, unlabelled, each with a field relcli does not know


@pytest.fixture(scope="module")
def llama(tiny_llama):
    return load_model(tiny_llama, dtype="float32")


@pytest.fixture(scope="module")
def t5(tiny_t5):
    return load_model(tiny_t5, dtype="float32")


@pytest.mark.parametrize("model", ["llama", "t5"])
def test_constrained_decoding_never_leaves_the_label_set(request, model):
    generator = Generator(request.getfixturevalue(model), BUILTIN["compact"], SEMEVAL, batch_size=8, explain=True)
    out = list(generator.predict(MANY))
    assert [r["id"] for r in out] == [r["id"] for r in MANY]
    for record in out:
        assert record["predicted"] in SEMEVAL
        assert record["explain"]["raw"] == record["predicted"]  # a whole label came out, not a fallback


def test_trie_allows_only_label_continuations(llama):
    tokenizer = llama.tokenizer
    labels = ["Other", "Cause-Effect(e1,e2)", "Cause-Effect(e2,e1)"]
    trie = LabelTrie(tokenizer, labels, tokenizer.eos_token_id)
    ids = {label: tokenizer(label, add_special_tokens=False).input_ids for label in labels}
    assert set(trie.allowed(())) == {ids["Other"][0], ids["Cause-Effect(e1,e2)"][0]}
    for label in labels:
        assert trie.allowed(tuple(ids[label])) == [tokenizer.eos_token_id]
        assert trie.label(ids[label] + [tokenizer.eos_token_id, 0, 0]) == label  # padding after the end
    assert trie.label(ids["Other"]) == "Other"  # decided before its end token (early stop)
    assert trie.label([]) is None  # undecided


def test_free_generation_maps_or_counts_and_falls_back_to_the_negative(llama):
    generator = Generator(llama, BUILTIN["compact"], SEMEVAL, decode="generate", max_new_tokens=6, explain=True)
    out = list(generator.predict(MANY))
    unmapped = [r for r in out if map_to_label(r["explain"]["raw"], SEMEVAL) is None]
    assert unmapped, "a random model should produce some text that names no label"
    assert all(r["predicted"] == "Other" for r in unmapped)
    assert generator.stats.unmapped == len(unmapped) and generator.stats.records == len(MANY)
    ids = {r["id"] for r in unmapped}
    assert 0 < len(generator.stats.examples) <= 5 and all(e.split(": ")[0] in ids for e in generator.stats.examples)


def test_negative_label_defaults_to_the_inventory_s_and_can_be_set(llama):
    assert Generator(llama, BUILTIN["compact"], TACRED).negative == "no_relation"
    assert Generator(llama, BUILTIN["compact"], ["a", "b"]).negative is None  # unmatched text stays invalid, never a positive label
    assert Generator(llama, BUILTIN["compact"], ["a", "b"], negative="a").negative == "a"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Cause-Effect(e2,e1)", "Cause-Effect(e2,e1)"),
        ("  Other\n", "Other"),
        ("cause-effect(E2, E1)", "Cause-Effect(e2,e1)"),  # case and punctuation
        ("Component-Whole(e2,e1)\nExplanation: the Cause-Effect(e1,e2) reading is wrong", "Component-Whole(e2,e1)"),
        ("The relation is Member-Collection(e1,e2).", "Member-Collection(e1,e2)"),  # mentioned
        ("Cause-Effect(e1,e2) or maybe Other", "Cause-Effect(e1,e2)"),  # the longest mention
        ("Cause-Effect", None),  # no direction: no SemEval label
        ("another answer", None),  # words, not letters: "another" does not mention Other
        ("", None),
    ],
)
def test_map_to_label_semeval(text, expected):
    assert map_to_label(text, SEMEVAL) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("org:founded_by", "org:founded_by"),
        ("ORG:FOUNDED", "org:founded"),
        ("The answer is per:city_of_birth", "per:city_of_birth"),
        ("relation: org:member_of.", "org:member_of"),
        ("no relation", "no_relation"),
        ("a newspaper agency", None),  # must not read as per:age
        ("title", None),
    ],
)
def test_map_to_label_tacred(text, expected):
    assert map_to_label(text, TACRED) == expected


@pytest.mark.parametrize("model", ["llama", "t5"])
def test_explain_scores_every_label_with_its_log_probability(request, model):
    import torch

    loaded = request.getfixturevalue(model)
    labels = ["Other", "Cause-Effect(e1,e2)", "Member-Collection(e2,e1)"]
    generator = Generator(loaded, BUILTIN["compact"], labels, explain=True)
    out = generator.predict_batch(RECORDS[:2])
    tokenizer, net = loaded.tokenizer, loaded.model
    for record, result in zip(RECORDS[:2], out):
        scores = result["explain"]["label_scores"]
        assert set(scores) == set(labels) and result["explain"]["raw"] == result["predicted"]
        # By hand, one label at a time: log P(label pieces + end token | input).
        (text,) = generator.inputs([record], [()])
        prompt = tokenizer(text, add_special_tokens=loaded.is_seq2seq).input_ids
        for label in labels:
            target = tokenizer(label, add_special_tokens=False).input_ids + [tokenizer.eos_token_id]
            with torch.no_grad():
                if loaded.is_seq2seq:
                    logits = net(input_ids=torch.tensor([prompt]), labels=torch.tensor([target])).logits[0]
                else:
                    logits = net(input_ids=torch.tensor([prompt + target])).logits[0, len(prompt) - 1 : -1]
            expected = torch.log_softmax(logits, -1).gather(-1, torch.tensor(target)[:, None]).sum().item()
            assert scores[label] == pytest.approx(expected, abs=1e-3) and scores[label] < 0


def test_output_keeps_input_order_whatever_the_batching(llama):
    one_by_one = Generator(llama, BUILTIN["compact"], SEMEVAL, batch_size=1)
    reference = [one_by_one.predict_batch([r])[0] for r in MANY]
    generator = Generator(llama, BUILTIN["compact"], SEMEVAL, batch_size=5)
    out = list(generator.predict(iter(MANY), chunk=16))  # several chunks, length-sorted batches inside
    assert out == reference
    assert [r["note"] for r in out] == list(range(len(MANY)))  # unknown fields pass through
    assert all(set(r) == set(m) | {"predicted"} for r, m in zip(out, MANY))


def test_retrieved_examples_reach_the_prompt_of_their_own_record(llama):
    seen = {}
    generator = Generator(llama, BUILTIN["compact-rag"], SEMEVAL, batch_size=3)
    real_inputs = generator.inputs

    def spy(records, examples):
        texts = real_inputs(records, examples)
        seen.update({r["id"]: t for r, t in zip(records, texts)})
        return texts

    generator.inputs = spy
    neighbours = {r["id"]: RECORDS[i % len(RECORDS)] for i, r in enumerate(MANY[:10])}
    list(generator.predict(MANY[:10], examples_for=lambda batch: [[neighbours[r["id"]]] for r in batch]))
    for record in MANY[:10]:
        assert seen[record["id"]].startswith(format_examples([neighbours[record["id"]]], compact=True) + "\n\n")


@pytest.mark.parametrize("model", ["llama", "t5"])
def test_decoding_sees_the_tokens_training_saw(request, monkeypatch, model):
    """The prompt tokens `extract` feeds the model are exactly those `finetune` trained on."""
    loaded = request.getfixturevalue(model)
    generator = Generator(loaded, BUILTIN["simple"], SEMEVAL, batch_size=4)
    fed = []
    if loaded.is_seq2seq:
        real_generate = loaded.model.generate

        def spy(**kwargs):
            for ids, mask in zip(kwargs["input_ids"].tolist(), kwargs["attention_mask"].tolist()):
                fed.append([i for i, m in zip(ids, mask) if m])
            return real_generate(**kwargs)

        monkeypatch.setattr(loaded.model, "generate", spy)
    else:
        real_decode = extract.trie_decode

        def spy(model, prompts, *args):
            fed.extend(map(list, prompts))
            return real_decode(model, prompts, *args)

        monkeypatch.setattr(extract, "trie_decode", spy)
    generator.predict_batch(RECORDS[:4])
    prompts = [{"prompt": render(BUILTIN["simple"], r, SEMEVAL), "completion": r["relation"]} for r in RECORDS[:4]]
    if loaded.is_seq2seq:
        trained = [row["input_ids"] for row in encode_seq2seq(loaded.tokenizer, prompts, chat=False, max_length=512)]
    else:
        trained = [[i for i, m in zip(row["input_ids"], row["completion_mask"]) if not m]
                   for row in encode_causal(loaded.tokenizer, prompts, chat=False, max_length=512)]
    assert fed == trained


def test_a_trained_adapter_labels_its_training_records(tiny_adapter):
    loaded = load_model(tiny_adapter, dtype="float32")
    generator = Generator(loaded, loaded.artifact.template, loaded.artifact.labels, batch_size=4)
    out = list(generator.predict(RECORDS))
    correct = sum(r["predicted"] == r["relation"] for r in out)
    assert correct >= len(RECORDS) - 1, [(r["relation"], r["predicted"]) for r in out]
    # Free generation of a barely trained model mostly spells the same labels out.
    free = Generator(loaded, BUILTIN["compact"], SEMEVAL, decode="generate", max_new_tokens=12)
    agree = sum(f["predicted"] == c["predicted"] for f, c in zip(free.predict(RECORDS), out))
    assert agree >= len(RECORDS) - 1 and free.stats.unmapped <= 1, free.stats
    scores = Generator(loaded, BUILTIN["compact"], SEMEVAL, explain=True).predict_batch(RECORDS[:1])[0]["explain"]
    assert max(scores["label_scores"], key=scores["label_scores"].get) == RECORDS[0]["relation"]


@pytest.mark.parametrize("template", ["simple", "compact"])
@pytest.mark.parametrize("early_stop", [True, False])
def test_trie_decode_chooses_what_generate_chooses(llama, template, early_stop):
    """relcli's own decoding loop (shared prefix, forced tokens fed together) and transformers'
    generate() with the trie processor walk the trie to the same tokens."""
    generator = Generator(llama, BUILTIN[template], SEMEVAL)
    texts = generator.inputs(MANY[:16], [()] * 16)
    generator.early_stop = early_stop
    ours = generator._generate(texts)
    theirs = generator._hf_generate(texts, early_stop)
    end = llama.tokenizer.eos_token_id
    for mine, hf in zip(ours, theirs):
        assert generator.trie.label(mine) == generator.trie.label(hf)
        if not early_stop:  # up to and including the end token; generate pads finished rows after it
            assert mine == hf[: hf.index(end) + 1]


def test_trie_decode_runs_the_shared_prefix_once_and_one_forward_per_branching(llama):
    trie = LabelTrie(llama.tokenizer, SEMEVAL, llama.tokenizer.eos_token_id)
    branchings = max(sum(len(trie.children.get(ids[:i], ())) > 1 for i in range(len(ids))) for ids in trie.labels)
    generator = Generator(llama, BUILTIN["simple"], SEMEVAL)
    prompts = llama.tokenizer(generator.inputs(MANY[:8], [()] * 8), add_special_tokens=False).input_ids
    calls = []
    hook = llama.model.register_forward_pre_hook(lambda module, args, kwargs: calls.append(kwargs["input_ids"].shape),
                                                 with_kwargs=True)
    try:
        decode_labels = extract.trie_decode(llama.model, prompts, trie, llama.tokenizer.pad_token_id, early_stop=False)
    finally:
        hook.remove()
    shared = common_prefix(prompts) // WIDTH_STEP * WIDTH_STEP
    assert calls[0] == (1, shared) and shared > 20  # the instructions, once
    assert calls[1][0] == 8 and calls[1][1] % WIDTH_STEP == 0  # then every row's own tokens, in a bucketed width
    assert calls[1][1] - WIDTH_STEP < max(len(p) for p in prompts) - shared <= calls[1][1]
    assert len(calls) <= 2 + branchings < 2 + trie.depth
    assert all(ids[-1] == trie.end_id for ids in decode_labels)


SCHEMA = {"negative": "Other", "relations": {
    "Cause-Effect(e1,e2)": {"head_types": ["A"]}, "Cause-Effect(e2,e1)": {"head_types": ["B"]},
    "Component-Whole(e1,e2)": {"tail_types": ["A"]}, "Message-Topic(e1,e2)": None}}


def typed(records):
    """The records with head and tail typed A or B in turn (four combinations)."""
    return [dict(r, head=dict(r["head"], type="AB"[i % 2]), tail=dict(r["tail"], type="AB"[i // 2 % 2]))
            for i, r in enumerate(records)]


@pytest.mark.parametrize("model", ["llama", "t5"])
def test_a_schema_keeps_each_record_to_the_labels_its_types_allow(request, model):
    from relcli.schema import from_dict

    schema = from_dict(SCHEMA)
    records = typed(MANY[:16])
    generator = Generator(request.getfixturevalue(model), BUILTIN["compact"], SEMEVAL, batch_size=8, explain=True, schema=schema)
    assert generator.negative == "Other"
    masked = list(generator.predict(records))
    for record, out in zip(records, masked):
        allowed = schema.allowed(record)
        assert out["predicted"] in allowed and out["explain"]["raw"] == out["predicted"]
        assert set(out["explain"]["label_scores"]) == set(allowed)
    # Greedy through a subset: where the unmasked walk ends at an allowed label the masked one does too.
    free = list(Generator(request.getfixturevalue(model), BUILTIN["compact"], SEMEVAL, batch_size=8).predict(records))
    for record, out, unmasked in zip(records, masked, free):
        assert (out["predicted"] == unmasked["predicted"]) == (unmasked["predicted"] in schema.allowed(record))
    if model == "llama":
        assert any(out["predicted"] != unmasked["predicted"] for out, unmasked in zip(masked, free))


@pytest.mark.parametrize("early_stop", [True, False])
def test_masked_trie_decode_chooses_what_masked_generate_chooses(llama, early_stop):
    from relcli.schema import from_dict

    generator = Generator(llama, BUILTIN["simple"], SEMEVAL, schema=from_dict(SCHEMA))
    records = typed(MANY[:16])
    texts, allowed = generator.inputs(records, [()] * 16), generator.allowed(records)
    generator.early_stop = early_stop
    ours, theirs = generator._generate(texts, allowed=allowed), generator._hf_generate(texts, early_stop, allowed=allowed)
    for mine, hf, labels in zip(ours, theirs, allowed):
        assert generator.trie.label(mine, labels) == generator.trie.label(hf, labels) in labels


def test_a_negative_margin_chooses_by_label_scores(llama):
    from relcli.schema import from_dict

    records = typed(MANY[:8])
    scored = list(Generator(llama, BUILTIN["compact"], SEMEVAL, explain=True, negative_margin=0.0).predict(records))
    for out in scored:
        scores = out["explain"]["label_scores"]
        assert out["predicted"] == max(scores, key=scores.get) and out["explain"]["negative_margin"] == 0.0
    assert {r["predicted"] for r in Generator(llama, BUILTIN["compact"], SEMEVAL, negative_margin=1e6).predict(records)} == {"Other"}
    masked = Generator(llama, BUILTIN["compact"], SEMEVAL, negative_margin=-1e6, schema=from_dict(SCHEMA))
    schema = masked.schema
    assert all(r["predicted"] in schema.allowed(r) and r["predicted"] != "Other" for r in masked.predict(records))
    with pytest.raises(UserError, match="not to free generation"):
        Generator(llama, BUILTIN["compact"], SEMEVAL, decode="generate", negative_margin=0.5)
    with pytest.raises(UserError, match="needs a negative label"):
        Generator(llama, BUILTIN["compact"], SEMEVAL[:4], negative_margin=0.5)
    with pytest.raises(UserError, match=r"labels \['Other'\] are not among the labels of the model"):
        Generator(llama, BUILTIN["compact"], SEMEVAL[:4], schema=from_dict({"negative": "Other", "relations": {SEMEVAL[0]: None}}))
