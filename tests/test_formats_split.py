from relcli.splits import carve_dev, split_of


def records(ids):
    return [{"id": i, "text": "x"} for i in ids]


def test_split_depends_on_seed_and_id_only():
    ids = [f"semeval-{n}" for n in range(2000)]
    forward = [r["split"] for r in carve_dev(records(ids), 0.1, 13)]
    backward = {r["id"]: r["split"] for r in carve_dev(records(reversed(ids)), 0.1, 13)}
    assert forward == [backward[i] for i in ids]
    assert 150 < forward.count("dev") < 250
    assert forward != [r["split"] for r in carve_dev(records(ids), 0.1, 14)]


def test_only_keeps_one_side_and_sides_partition():
    ids = range(500)
    dev = [r["id"] for r in carve_dev(records(ids), 0.3, 1, only="dev")]
    train = [r["id"] for r in carve_dev(records(ids), 0.3, 1, only="train")]
    assert sorted(dev + train) == list(ids) and not set(dev) & set(train)
    assert all(split_of(i, 0.3, 1) == "dev" for i in dev)


def test_extremes():
    assert {split_of(i, 0.0, 5) for i in range(100)} == {"train"}
    assert {split_of(i, 1.0, 5) for i in range(100)} == {"dev"}
