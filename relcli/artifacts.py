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
            raise UserError(f"{path} is unreadable: {exc}") from None
        if artifact.kind not in KINDS or artifact.task not in TASKS or not isinstance(artifact.labels, list):
            raise UserError(f"{path} is not a relcli model description (kind {artifact.kind!r}, task {artifact.task!r})")
        return artifact


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
