"""What goes wrong with a case file: the error type, and what reading an npz can raise."""

from __future__ import annotations

import struct
import zipfile
import zlib

# np.load and NpzFile member access raise these on missing, truncated or corrupt
# files: a broken zip directory (BadZipFile), a bad CRC (BadZipFile), a corrupt
# deflate stream behind an intact directory (zlib.error), a pickled array under
# allow_pickle=False (ValueError), a short read (EOFError); fuzzing the bytes of a
# case also turned up an unknown compression method (NotImplementedError), an
# "encrypted" member (RuntimeError), a garbled .npy header (SyntaxError from its
# literal parser) and bad zip field values (struct.error, OverflowError).
READ_ERRORS: tuple[type[BaseException], ...] = (
    OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile, zlib.error,
    NotImplementedError, RuntimeError, SyntaxError, struct.error, OverflowError,
)


class CaseError(ValueError):
    """A case file that breaks the contract; the message starts with its file name."""

    def __init__(self, name: str, problem: str) -> None:
        # Both parts go to args so the error survives pickling (worker processes).
        super().__init__(name, problem)
        self.name = name
        self.problem = problem

    def __str__(self) -> str:
        return f"{self.name}: {self.problem}"
