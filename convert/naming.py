"""Case names: `<2D|3D>Box_<Modality>_<id>`, the modality from the options, the DICOM tag or the name."""

from __future__ import annotations

import re
from pathlib import Path

from casefiles import CaseError, case_kind, modality
from convert.readers import FORMATS

MODALITY_FORM = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")


def case_id(source: Path) -> str:
    """An id from the source's name: its format ending dropped, characters other than letters and digits as `-`."""
    name = source.name
    for ending in FORMATS:
        if name.lower().endswith(ending):
            name = name[: -len(ending)]
            break
    return re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-") or "case"


def resolve_modality(given: str | None, name: str | None, dicom_modality: str | None) -> str:
    """The case's modality: `--modality`, else the one in `--name`, else the DICOM tag's; ValueError if none or in conflict."""
    from_name = modality(name + ".npz") if name else None
    if given and from_name and given != from_name:
        raise ValueError(f"--modality {given} and the name {name} (modality {from_name}) disagree")
    chosen = given or from_name or dicom_modality
    if not chosen:
        raise ValueError("no modality: give --modality (CT, MR, PET, US, ...)")
    if not MODALITY_FORM.fullmatch(chosen):
        raise ValueError(f"modality {chosen!r}: use letters, digits and '-' (it becomes part of the case name)")
    return chosen


def case_name(kind: str, modality_name: str, source: Path, given: str | None) -> str:
    """`--name` checked against the case's kind, or `<kind>Box_<modality>_<id from the source>`."""
    if given is None:
        return f"{kind}Box_{modality_name}_{case_id(source)}"
    try:
        named_kind = case_kind(given + ".npz")
        modality(given + ".npz")
    except CaseError as err:
        raise ValueError(f"--name {given}: {err.problem}") from None
    if named_kind != kind:
        raise ValueError(f"--name {given} says {named_kind} but the image is {kind}")
    return given
