"""Where a run's time goes: encoder and decoder calls counted and timed, phases stamped, saved as JSON.

`python -m inference ... --profile FILE` writes it; the benchmark reads it to split a
case's wall clock into start-up, model loading, encoder, decoder, I/O and the rest.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from inference.backends import Backend


@dataclass
class CallStats:
    """Calls of one model part: how many, how many boxes (decoder), how many seconds."""

    calls: int = 0
    items: int = 0
    seconds: float = 0.0


class TimedBackend:
    """A backend that counts and times every encode and decode call of the backend it wraps."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.decode_batch = backend.decode_batch
        self.encoder = CallStats()
        self.decoder = CallStats()
        # Decoder calls on an embedding other than the previous call's: the exported
        # backends run the decoder's image half for those only.
        self.new_images = CallStats()
        self._last_embedding: np.ndarray | None = None
        self.first_call: float | None = None  # epoch seconds of the first encoder call

    def encode(self, image: np.ndarray) -> np.ndarray:
        """Encode, timed."""
        if self.first_call is None:
            self.first_call = time.time()
        start = time.perf_counter()
        embedding = self.backend.encode(image)
        self.encoder.calls += 1
        self.encoder.items += 1
        self.encoder.seconds += time.perf_counter() - start
        return embedding

    def decode(self, embedding: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """Decode, timed."""
        if embedding is not self._last_embedding:
            self.new_images.calls += 1
            self._last_embedding = embedding
        start = time.perf_counter()
        logits = self.backend.decode(embedding, boxes)
        self.decoder.calls += 1
        self.decoder.items += len(logits)
        self.decoder.seconds += time.perf_counter() - start
        return logits

    def totals(self) -> dict[str, dict[str, float]]:
        """Copies of the running totals."""
        return {"encoder": asdict(self.encoder), "decoder": asdict(self.decoder), "new_images": asdict(self.new_images)}


@dataclass
class Profile:
    """Epoch stamps of a run's phases and one record per case."""

    stamps: dict[str, float] = field(default_factory=dict)
    cases: list[dict[str, Any]] = field(default_factory=list)

    def stamp(self, name: str) -> None:
        """Record now as the moment `name` was reached."""
        self.stamps[name] = time.time()

    def save(self, path: Path) -> None:
        """Write the profile as JSON."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"stamps": self.stamps, "cases": self.cases}, indent=2) + "\n")


def case_record(name: str, seconds: float, read: float, write: float,
                before: dict[str, dict[str, float]], after: dict[str, dict[str, float]]) -> dict[str, Any]:
    """One case's record: its seconds, read and write seconds, and the encoder/decoder calls it made."""
    record: dict[str, Any] = {"case": name, "seconds": seconds, "read": read, "write": write}
    for part in after:
        record[part] = {key: after[part][key] - before[part][key] for key in after[part]}
    return record


def median_ms(call: Callable[[], object], repeats: int) -> float:
    """Median milliseconds of `call()` over `repeats` runs, after one warm-up run."""
    call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)
