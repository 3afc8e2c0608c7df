"""Builtin label inventories, in a fixed order (never derived from test data)."""

from __future__ import annotations

from pathlib import Path

from relcli.errors import UserError

_SEMEVAL_RELATIONS = [
    "Cause-Effect", "Component-Whole", "Content-Container", "Entity-Destination", "Entity-Origin",
    "Instrument-Agency", "Member-Collection", "Message-Topic", "Product-Producer",
]
SEMEVAL = [f"{r}({d})" for r in _SEMEVAL_RELATIONS for d in ("e1,e2", "e2,e1")] + ["Other"]

_SHARED_TACRED = [
    "org:alternate_names", "org:dissolved", "org:founded", "org:founded_by", "org:member_of",
    "org:members", "org:number_of_employees/members", "org:political/religious_affiliation",
    "org:shareholders", "org:top_members/employees", "org:website",
    "per:age", "per:cause_of_death", "per:charges", "per:children", "per:cities_of_residence",
    "per:city_of_birth", "per:city_of_death", "per:countries_of_residence", "per:country_of_birth",
    "per:country_of_death", "per:date_of_birth", "per:date_of_death", "per:employee_of",
    "per:origin", "per:other_family", "per:parents", "per:religion", "per:schools_attended",
    "per:siblings", "per:spouse", "per:stateorprovince_of_birth", "per:stateorprovince_of_death",
    "per:stateorprovinces_of_residence", "per:title",
]
TACRED = sorted(_SHARED_TACRED + [
    "org:city_of_headquarters", "org:country_of_headquarters", "org:parents",
    "org:stateorprovince_of_headquarters", "org:subsidiaries", "per:alternate_names",
]) + ["no_relation"]
RETACRED = sorted(_SHARED_TACRED + [
    "org:city_of_branch", "org:country_of_branch", "org:stateorprovince_of_branch", "per:identity",
]) + ["no_relation"]

BUILTIN = {"semeval": SEMEVAL, "tacred": TACRED, "tacrev": TACRED, "retacred": RETACRED}
NEGATIVES = ("no_relation", "Other")


def negative_label(labels: list[str]) -> str | None:
    """The inventory's negative label (`Other` or `no_relation`), if it has one."""
    return next((label for label in labels if label in NEGATIVES), None)


def load_labels(spec: str) -> list[str]:
    """A builtin inventory name, or a file with one label per line."""
    if spec in BUILTIN:
        return list(BUILTIN[spec])
    path = Path(spec)
    if not path.is_file():
        raise UserError(f"{spec!r} is neither a builtin inventory ({', '.join(BUILTIN)}) nor a file", param="labels")
    try:
        labels = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read label file {path}: {exc}", param="labels") from None
    if len(set(labels)) != len(labels) or not labels:
        raise UserError(f"{path}: a label file needs one distinct label per line", param="labels")
    return labels
