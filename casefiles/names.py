"""Case file names: `<2D|3D><anything>_<Modality>_<id>.npz`, and finding the case files of a folder."""

from __future__ import annotations

import os
from pathlib import Path

from casefiles.errors import CaseError

KINDS = ("2D", "3D")
NAME_FORM = "<2DBox|3DBox>_<Modality>_<id>.npz, e.g. 2DBox_US_0001.npz"


def case_kind(name: str) -> str:
    """'2D' or '3D', by the first two characters of the file name (the organisers' rule)."""
    kind = Path(name).name[:2]
    if kind not in KINDS:
        raise CaseError(Path(name).name, f"name must start with '2D' or '3D' ({NAME_FORM})")
    return kind


def is_3d(name: str) -> bool:
    """Whether a case is a volume; CaseError if the name is neither 2D nor 3D."""
    return case_kind(name) == "3D"


def modality(name: str) -> str:
    """Everything between the kind token and the id: `2DBox_Fundus_Extra_0001.npz` -> `Fundus_Extra`."""
    base = Path(name).name
    parts = base.removesuffix(".npz").split("_")
    if len(parts) < 3 or not all(parts[1:-1]):
        raise CaseError(base, f"no modality in the name ({NAME_FORM})")
    return "_".join(parts[1:-1])


def discover_cases(folder: Path) -> list[Path]:
    """The `*.npz` files of a folder, sorted by name; hidden files (macOS `._*` copies) are skipped."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} does not exist or is not a folder")
    return sorted(p for p in folder.glob("*.npz") if p.is_file() and not p.name.startswith("."))


def ignored_entries(folder: Path) -> list[str]:
    """What `discover_cases` passes over in a folder, each as 'name (why)'; hidden files are not listed.

    A symlink to a case file is read like the file; one that points nowhere, a
    folder and a file not ending in .npz are not cases.
    """
    ignored = []
    for entry in sorted(Path(folder).iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_symlink() and not entry.exists():
            ignored.append(f"{entry.name} (symlink to a missing {os.readlink(entry)})")
        elif entry.is_dir():
            ignored.append(f"{entry.name} (a folder)")
        elif not entry.is_file():
            ignored.append(f"{entry.name} (not a regular file)")
        elif entry.suffix != ".npz":
            ignored.append(f"{entry.name} (not an .npz file)")
    return ignored
