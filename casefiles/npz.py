"""Read named arrays from an npz file without ever unpickling."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

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
