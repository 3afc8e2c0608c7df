"""relcli.json: what a folder written by `relcli finetune` is and how to use it.

One small JSON file beside the weights (a PEFT adapter, or an encoder + head) says what kind of
model the folder holds, its base model, the task, the prompt template *text*, the label inventory,
the chat framing and how it was trained. It is written last and atomically, so its presence marks
a complete folder. Folders written by earlier relcli versions keep loading (see ``_upgrade``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from relcli import __version__
from relcli.errors import UserError
from relcli.streams import write_atomic

FILE = "relcli.json"
KINDS = ("generator", "classifier")
TASKS = ("rc", "triplets")


@dataclass
class Artifact:
    kind: str  # generator | classifier
    base_model: str
    labels: list[str]
    task: str = "rc"  # rc (a given pair) | triplets (end-to-end)
    template: str | None = None  # rc generators: the template text prompts were rendered with
    template_name: str | None = None  # the builtin name or file it came from, for people
    style: str | None = None  # triplets: rebel | json
    compact: bool = False  # triplets: prompts without the instruction
    chat: bool = False
    seq2seq: bool = False
    continued_from: str | None = None
    encoder: dict[str, Any] = field(default_factory=dict)  # classifier: pooling, markers, max_length
    training: dict[str, Any] = field(default_factory=dict)
    relcli_version: str = __version__

    def write(self, directory: str | Path) -> None:
        write_atomic(Path(directory) / FILE, json.dumps(asdict(self), indent=2, ensure_ascii=False).encode() + b"\n")

    @classmethod
    def read(cls, directory: str | Path) -> "Artifact | None":
        """The folder's relcli.json, or None when it has none (a plain model folder)."""
        path = Path(directory) / FILE
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            artifact = cls(**{k: v for k, v in _upgrade(data).items() if k in _FIELDS})
        except (OSError, UnicodeDecodeError, ValueError, TypeError) as exc:
            raise UserError(f"{path} is unreadable: {exc}", param="model") from None
        if artifact.kind not in KINDS or artifact.task not in TASKS:
            raise UserError(f"{path} is not a relcli model description (kind {artifact.kind!r}, task {artifact.task!r})", param="model")
        problem = artifact._problem()
        if problem:
            raise UserError(f"{path} is damaged: {problem}", param="model")
        return artifact

    def _problem(self) -> str | None:
        """What is wrong with the fields of a description read from a file, or None."""
        from relcli.prompts import check_template
        from relcli.triplets import STYLES

        labels = self.labels
        if not isinstance(labels, list) or not labels or not all(isinstance(label, str) and label for label in labels) \
                or len(set(labels)) != len(labels):
            return f"labels must be a list of distinct label strings, not {labels!r}"[:200]
        for name in ("base_model",):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                return f"{name} must be a model name, not {getattr(self, name)!r}"
        for name in ("template", "template_name", "continued_from"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), str):
                return f"{name} must be a string, not {getattr(self, name)!r}"
        for name in ("compact", "chat", "seq2seq"):
            if not isinstance(getattr(self, name), bool):
                return f"{name} must be true or false, not {getattr(self, name)!r}"
        for name in ("encoder", "training"):
            if not isinstance(getattr(self, name), dict):
                return f"{name} must be an object, not {getattr(self, name)!r}"
        if self.style is not None and self.style not in STYLES:
            return f"style must be one of {', '.join(STYLES)}, not {self.style!r}"
        if self.template is not None:
            try:
                check_template(self.template)
            except UserError as exc:
                return f"its template: {exc}"
        return None


def check_replaceable(directory: str | Path, param: str = "output") -> None:
    """Refuse to replace a folder that relcli did not write: only a missing or empty folder, one
    holding a relcli.json, or one holding nothing but the checkpoints of a run, is replaced."""
    directory = Path(directory)
    if not directory.is_dir() or (directory / FILE).is_file():
        return
    if any(p.name != "checkpoints" for p in directory.iterdir()):
        raise UserError(f"{directory} is a folder that relcli did not write; choose a new or empty one", param=param)


_FIELDS = {f.name for f in fields(Artifact)}
_ENCODER_KEYS = ("pooling", "typed_markers", "entity_types", "max_length")


def _upgrade(data: dict) -> dict:
    """Read the relcli.json of folders written before this schema (relcli <= 0.1.0 main)."""
    if "style" in data or "encoder" in data:
        return data
    data = dict(data)
    if data.get("kind") == "classifier":
        data["encoder"] = {key: data.pop(key) for key in _ENCODER_KEYS if key in data}
        return data
    data["seq2seq"] = data.pop("task", None) == "seq2seq"
    template = data.get("template")
    # Triplet adapters recorded their prompt as a name: triplets-<style>[-compact].
    if isinstance(template, str) and template.startswith("triplets-"):
        style, _, compact = template[len("triplets-"):].partition("-")
        data.update(task="triplets", style=style, compact=compact == "compact", template=None, template_name=template)
    elif isinstance(template, str):
        from relcli.prompts import BUILTIN

        # A builtin name stays loadable; a path was stored as a path (the text is read once, now).
        data["template_name"] = template
        if template in BUILTIN:
            data["template"] = BUILTIN[template]
        elif "{" not in template:
            try:
                data["template"] = Path(template).read_text(encoding="utf-8")
            except OSError:
                raise ValueError(f"its template file {template} is gone (folders written now store the text)") from None
    return data
