"""The one owner of the weight manifest and of the export records: no other module parses their JSON.

- `checkpoints/manifest.json` (tracked) holds what is true on every machine: each
  checkpoint's architecture config, source, size and sha256.
- `checkpoints/exported/<model>.json` (untracked) records what an export produced on
  this machine: its files' size and sha256, the sha256 of the checkpoint they came
  from, and the measured parity against torch. ONNX export is not byte-identical
  across CPUs, so these figures belong to the machine, not to git.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.atomic import write_atomic

CHECKPOINTS_DIR = Path(__file__).resolve().parent
MANIFEST_PATH = CHECKPOINTS_DIR / "manifest.json"
EXPORT_DIR = CHECKPOINTS_DIR / "exported"
# Bumped whenever the export writes different files or record fields; an older record means: export again.
RECORD_VERSION = 3


class ChecksumError(RuntimeError):
    """A weight file is missing, or its size or sha256 is not the recorded one."""


@dataclass(frozen=True)
class PinnedFile:
    """A file pinned by its expected size and sha256."""

    path: Path
    size: int
    sha256: str

    @classmethod
    def of(cls, path: Path) -> PinnedFile:
        """Pin an existing file as it is now."""
        return cls(Path(path), Path(path).stat().st_size, sha256_of(Path(path)))

    def verify(self) -> Path:
        """Return the path if size and sha256 match, else raise ChecksumError."""
        if not self.path.is_file():
            raise ChecksumError(f"{self.path} is missing")
        size = self.path.stat().st_size
        if size != self.size:
            raise ChecksumError(f"{self.path}: size {size:,} bytes, recorded {self.size:,}")
        actual = sha256_of(self.path)
        if actual != self.sha256:
            raise ChecksumError(f"{self.path}: sha256 {actual}, recorded {self.sha256}")
        return self.path


@dataclass(frozen=True)
class Checkpoint:
    """A weight file named by the manifest."""

    name: str
    config: str
    description: str
    source: dict[str, Any]
    file: PinnedFile

    @property
    def path(self) -> Path:
        """Where the file lives once fetched."""
        return self.file.path


@dataclass(frozen=True)
class ExportRecord:
    """What one export of a model produced on this machine."""

    model: str
    checkpoint: str  # manifest name of the source checkpoint, or its file name
    checkpoint_sha256: str
    files: dict[str, dict[str, PinnedFile]]  # format ("onnx", "openvino") -> part -> file
    details: dict[str, Any] = field(default_factory=dict)  # format facts and measured parity

    def all_files(self) -> list[PinnedFile]:
        """Every recorded file, of every format."""
        return [entry for parts in self.files.values() for entry in parts.values()]


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in chunks into one reused buffer."""
    with Path(path).open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def checkpoints(manifest_path: Path = MANIFEST_PATH) -> dict[str, Checkpoint]:
    """Every checkpoint of the manifest, by name."""
    entries = _read_json(manifest_path)["checkpoints"]
    return {
        name: Checkpoint(
            name, e["config"], e["description"], e["source"],
            PinnedFile(manifest_path.parent / e["file"], e["size"], e["sha256"]),
        )
        for name, e in entries.items()
    }


def checkpoint(name: str, manifest_path: Path = MANIFEST_PATH) -> Checkpoint:
    """The named checkpoint; KeyError lists the known names."""
    known = checkpoints(manifest_path)
    if name not in known:
        raise KeyError(f"unknown checkpoint {name!r}; known: {', '.join(sorted(known))}")
    return known[name]


def checkpoint_for(config: str, manifest_path: Path = MANIFEST_PATH) -> Checkpoint:
    """The manifest's checkpoint for an architecture config; ValueError if there is none."""
    for entry in checkpoints(manifest_path).values():
        if entry.config == config:
            return entry
    raise ValueError(f"no checkpoint for {config!r} in the manifest: pass --checkpoint PATH")


def export_record_path(model: str, export_dir: Path = EXPORT_DIR) -> Path:
    """Where the export record of a model lives."""
    return Path(export_dir) / f"{model}.json"


def exported_models(export_dir: Path = EXPORT_DIR) -> list[str]:
    """Models with an export record in `export_dir`, sorted."""
    return sorted(p.stem for p in Path(export_dir).glob("*.json"))


def read_export(model: str, export_dir: Path = EXPORT_DIR) -> ExportRecord:
    """The export record of a model; ChecksumError says how to make one if it is missing."""
    path = export_record_path(model, export_dir)
    if not path.is_file():
        raise ChecksumError(f"{model!r} has not been exported here ({path} is missing): "
                            f"run python -m inference.export --model {model} --check-data DIR")
    raw = _read_json(path)
    if raw.get("record_version") != RECORD_VERSION:
        raise ChecksumError(f"{path} was written by an older version of the export: "
                            f"run python -m inference.export --model {model} --check-data DIR again")
    files = {
        fmt: {part: PinnedFile(path.parent / f["file"], f["size"], f["sha256"]) for part, f in parts.items()}
        for fmt, parts in raw["files"].items()
    }
    return ExportRecord(model, raw["checkpoint"]["name"], raw["checkpoint"]["sha256"], files, raw.get("details", {}))


def exported_files(
    model: str, fmt: str, export_dir: Path = EXPORT_DIR, exclude: Collection[str] = ()
) -> dict[str, Path]:
    """Paths of a model's exported files of one format by part (but `exclude`), each verified (size, sha256).

    Hashing the ~60 MB of one format takes about 45 ms, read from disk, and leaves
    the files in the page cache for the backend that loads them next; excluded
    parts (ones another format replaces) are not read.
    """
    record = read_export(model, export_dir)
    if fmt not in record.files:
        raise ChecksumError(f"{model} has no {fmt} export here: run python -m inference.export --model {model} --check-data DIR")
    return {part: entry.verify() for part, entry in record.files[fmt].items() if part not in exclude}


def verify_export(model: str, export_dir: Path = EXPORT_DIR, manifest_path: Path = MANIFEST_PATH) -> ExportRecord:
    """Check a model's exported files against their record, and that the record is not stale.

    Stale means the export came from a manifest checkpoint whose sha256 has since changed.
    """
    record = read_export(model, export_dir)
    for entry in record.all_files():
        entry.verify()
    known = checkpoints(manifest_path)
    source = known.get(record.checkpoint)
    if source is not None and source.file.sha256 != record.checkpoint_sha256:
        raise ChecksumError(
            f"{model}: exported from {record.checkpoint} with sha256 {record.checkpoint_sha256[:12]}…, "
            f"the manifest now has {source.file.sha256[:12]}…: export again"
        )
    return record


def record_export(
    model: str,
    files: dict[str, dict[str, Path]],
    checkpoint_path: Path,
    details: dict[str, Any],
    export_dir: Path = EXPORT_DIR,
    manifest_path: Path = MANIFEST_PATH,
) -> Path:
    """Write the export record of `files` (format -> part -> path, all in `export_dir`); return its path."""
    export_dir = Path(export_dir)
    checkpoint_sha = sha256_of(checkpoint_path)
    by_sha = {c.file.sha256: c.name for c in checkpoints(manifest_path).values()}
    entries: dict[str, dict[str, dict[str, Any]]] = {}
    for fmt, parts in files.items():
        entries[fmt] = {}
        for part, path in parts.items():
            pinned = PinnedFile.of(path)
            if pinned.path.resolve().parent != export_dir.resolve():
                raise ValueError(f"{path} is not in the export folder {export_dir}")
            entries[fmt][part] = {"file": pinned.path.name, "size": pinned.size, "sha256": pinned.sha256}
    content = {
        "record_version": RECORD_VERSION,
        "model": model,
        "checkpoint": {"name": by_sha.get(checkpoint_sha, Path(checkpoint_path).name), "sha256": checkpoint_sha},
        "files": entries,
        "details": details,
    }
    path = export_record_path(model, export_dir)
    _write_json(path, content)
    return path


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def _write_json(path: Path, content: dict[str, Any]) -> None:
    """Write atomically, so a crash never leaves half a record."""
    write_atomic(path, json.dumps(content, indent=2) + "\n")
