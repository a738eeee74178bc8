"""Read named arrays from an npz file without ever unpickling."""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import IO

import numpy as np

from casefiles.errors import READ_ERRORS, CaseError


def load_arrays(path: Path, required: Sequence[str], optional: Sequence[str] = ()) -> dict[str, np.ndarray]:
    """The `required` arrays and those of `optional` that exist, read with allow_pickle=False.

    Every member is decompressed here, so a corrupt file fails now, as a CaseError
    naming the file and the problem, and never later in the caller.
    """
    path = Path(path)
    name = path.name
    if not path.is_file():
        raise CaseError(name, "missing")
    try:
        data = np.load(path, allow_pickle=False)
    except READ_ERRORS as exc:
        raise CaseError(name, f"cannot read the npz file ({_describe(exc)})") from exc
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise CaseError(name, "not an npz archive (it holds a single .npy array)")
    with data:
        missing = [key for key in required if key not in data.files]
        if missing:
            raise CaseError(name, f"missing key(s) {missing}; found {sorted(data.files)}")
        wanted = [*required, *(key for key in optional if key in data.files)]
        return {key: _read_member(name, data, key) for key in wanted}


def _read_member(name: str, data: np.lib.npyio.NpzFile, key: str) -> np.ndarray:
    try:
        value = data[key]
    except READ_ERRORS as exc:
        # allow_pickle=False makes object arrays fail here, on first access.
        raise CaseError(name, f"cannot read {key!r} ({_describe(exc)})") from exc
    # NpzFile hands back raw bytes for a member that is not an .npy stream.
    if not isinstance(value, np.ndarray):
        raise CaseError(name, f"cannot read {key!r}: the member is not an .npy array")
    return value


def _describe(exc: BaseException) -> str:
    """`zlib.error: ...`, `ValueError: ...`: the exception's type as it is imported, and its message."""
    kind = type(exc)
    prefix = "" if kind.__module__ == "builtins" else f"{kind.__module__}."
    return f"{prefix}{kind.__qualname__}: {exc}"


def array_headers(path: Path) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Shape and dtype of every `.npy` member of an npz file, read from the headers alone.

    Nothing is decompressed past each member's header, so the size of a case is
    known before its arrays are read (a small file can inflate to gigabytes).
    Members whose header cannot be parsed are left out; `load_arrays` reports them.
    """
    path = Path(path)
    try:
        archive = zipfile.ZipFile(path)
    except READ_ERRORS as exc:
        raise CaseError(path.name, f"cannot read the npz file ({_describe(exc)})") from exc
    headers: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
    with archive:
        for member in archive.namelist():
            if not member.endswith(".npy"):
                continue
            key = member.removesuffix(".npy")
            try:
                with archive.open(member) as stream:
                    header = _read_header(stream)
            except READ_ERRORS as exc:
                raise CaseError(path.name, f"cannot read {key!r} ({_describe(exc)})") from exc
            if header is not None:
                headers[key] = header
    return headers


def _read_header(stream: IO[bytes]) -> tuple[tuple[int, ...], np.dtype] | None:
    """(shape, dtype) from an .npy stream positioned at its start; None for a format version numpy cannot parse here."""
    version = np.lib.format.read_magic(stream)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(stream)
    elif version == (2, 0):
        shape, _, dtype = np.lib.format.read_array_header_2_0(stream)
    else:
        return None
    return tuple(int(n) for n in shape), dtype
