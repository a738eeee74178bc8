"""The one error of the converter: a file and what is wrong with it."""

from __future__ import annotations

from pathlib import Path


class ConvertError(ValueError):
    """A source, label, box or segmentation file that cannot be converted; the message starts with the file."""

    def __init__(self, path: Path | str, problem: str) -> None:
        super().__init__(str(path), problem)
        self.path = str(path)
        self.problem = problem

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"
