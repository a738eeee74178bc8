"""Where a run's time goes (`python -m inference ... --profile FILE`): the profiler and the file's schema.

The profiler counts and times every encoder and decoder call, stamps the run's
phases and keeps one record per segmented case. The file is JSON:

    {"stamps": {"main": t, "loaded": t, "first_encode": t, "done": t},   (epoch seconds)
     "cases": [{"case": name, "seconds": s, "read": s, "write": s,
                "encoder": CALLS, "decoder": CALLS, "new_images": CALLS}, ...]}

where CALLS is {"calls": n, "items": n, "seconds": s} (items: boxes for the
decoder; new_images: decoder calls on another embedding than the call before,
for which the decoder's image half runs). `read_profile` is how other code reads it.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from common.atomic import write_atomic
from inference.backends import Backend

# The phases stamped: the CLI starts, the models are loaded, the first encoder call, the run ends.
STAMPS = ("main", "loaded", "first_encode", "done")


@dataclass(frozen=True)
class CallStats:
    """Calls of one model part: how many, how many items (boxes, for the decoder), how many seconds."""

    calls: int = 0
    items: int = 0
    seconds: float = 0.0

    def plus(self, items: int, seconds: float) -> CallStats:
        """These stats with one more call."""
        return CallStats(self.calls + 1, self.items + items, self.seconds + seconds)

    def minus(self, earlier: CallStats) -> CallStats:
        """The calls made since `earlier`."""
        return CallStats(self.calls - earlier.calls, self.items - earlier.items, self.seconds - earlier.seconds)


@dataclass(frozen=True)
class CallTotals:
    """Encoder calls, decoder calls and decoder calls on a new image."""

    encoder: CallStats = CallStats()
    decoder: CallStats = CallStats()
    new_images: CallStats = CallStats()

    def minus(self, earlier: CallTotals) -> CallTotals:
        """The calls made since `earlier`."""
        return CallTotals(self.encoder.minus(earlier.encoder), self.decoder.minus(earlier.decoder),
                          self.new_images.minus(earlier.new_images))


@dataclass(frozen=True)
class CaseProfile:
    """One segmented case: its seconds (read to written), read and write seconds, and its model calls."""

    case: str
    seconds: float
    read: float
    write: float
    calls: CallTotals

    @property
    def other_seconds(self) -> float:
        """Seconds neither in I/O nor in model calls: pre- and post-processing, painting."""
        return self.seconds - self.read - self.write - self.calls.encoder.seconds - self.calls.decoder.seconds


@dataclass(frozen=True)
class RunProfile:
    """The --profile file: phase stamps and the segmented cases."""

    stamps: dict[str, float]
    cases: list[CaseProfile]

    @property
    def load_seconds(self) -> float:
        """From the CLI's start to the models being loaded."""
        return self.stamps["loaded"] - self.stamps["main"]

    def startup_seconds(self, launched: float) -> float:
        """From `launched` (epoch seconds, before the process started) to the first encoder call."""
        return self.stamps["first_encode"] - launched

    def to_json(self) -> str:
        """The file's text."""
        cases = [{"case": c.case, "seconds": c.seconds, "read": c.read, "write": c.write, **asdict(c.calls)}
                 for c in self.cases]
        return json.dumps({"stamps": self.stamps, "cases": cases}, indent=2) + "\n"


def read_profile(path: Path) -> RunProfile:
    """Read a --profile file; ValueError naming the file when it does not follow the schema."""
    try:
        raw = json.loads(Path(path).read_text())
        cases = [
            CaseProfile(c["case"], c["seconds"], c["read"], c["write"],
                        CallTotals(*(CallStats(**c[part]) for part in ("encoder", "decoder", "new_images"))))
            for c in raw["cases"]
        ]
        stamps = {name: float(value) for name, value in raw["stamps"].items()}
    except (KeyError, TypeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: not a --profile file ({type(err).__name__}: {err})") from err
    return RunProfile(stamps, cases)


class CallClock:
    """Running totals of a run's model calls, shared by the timed backends of all its models."""

    def __init__(self) -> None:
        self.totals = CallTotals()
        self.first_encode: float | None = None  # epoch seconds of the first encoder call


class TimedBackend:
    """A backend that counts and times every encode and decode call of the backend it wraps on a shared clock.

    The clock, not the profiler, keeps the counts, so a model the run releases is
    freed with its wrapper.
    """

    def __init__(self, backend: Backend, clock: CallClock) -> None:
        self.backend = backend
        self.decode_batch = backend.decode_batch
        self._clock = clock
        self._last_embedding: np.ndarray | None = None

    def encode(self, image: np.ndarray) -> np.ndarray:
        """Encode, timed."""
        clock = self._clock
        if clock.first_encode is None:
            clock.first_encode = time.time()
        start = time.perf_counter()
        embedding = self.backend.encode(image)
        clock.totals = replace(clock.totals, encoder=clock.totals.encoder.plus(1, time.perf_counter() - start))
        return embedding

    def decode(self, embedding: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """Decode, timed; a call on another embedding than the last one counts as a new image."""
        new_image = embedding is not self._last_embedding
        self._last_embedding = embedding
        start = time.perf_counter()
        logits = self.backend.decode(embedding, boxes)
        seconds = time.perf_counter() - start
        totals = replace(self._clock.totals, decoder=self._clock.totals.decoder.plus(len(logits), seconds))
        if new_image:
            totals = replace(totals, new_images=totals.new_images.plus(1, seconds))
        self._clock.totals = totals
        return logits


class Profiler:
    """Stamps a run's phases, times its backends' calls and records each segmented case; created as the run starts."""

    def __init__(self) -> None:
        self.stamps: dict[str, float] = {}
        self.cases: list[CaseProfile] = []
        self._clock = CallClock()
        self._counted = CallTotals()
        self.stamp("main")

    def stamp(self, name: str) -> None:
        """Record now as the moment `name` (one of STAMPS) was reached."""
        if name not in STAMPS:
            raise ValueError(f"unknown stamp {name!r}; stamps: {', '.join(STAMPS)}")
        self.stamps[name] = time.time()

    def instrument(self, backend: Backend) -> Backend:
        """A loaded `backend`, wrapped so that its calls are timed; the first one stamps "loaded"."""
        if "loaded" not in self.stamps:
            self.stamp("loaded")
        return TimedBackend(backend, self._clock)

    def case_ended(self, name: str, seconds: float, read: float, write: float, written: bool) -> None:
        """Record a `written` case with the calls made since the previous case ended; other cases' calls are dropped."""
        calls, self._counted = self._clock.totals.minus(self._counted), self._clock.totals
        if written:
            self.cases.append(CaseProfile(name, seconds, read, write, calls))

    def profile(self) -> RunProfile:
        """The run so far, stamped "done" now."""
        if self._clock.first_encode is not None:
            self.stamps["first_encode"] = self._clock.first_encode
        self.stamp("done")
        return RunProfile(dict(self.stamps), list(self.cases))

    def save(self, path: Path) -> None:
        """Write the --profile file atomically."""
        write_atomic(path, self.profile().to_json())


def median_ms(call: Callable[[], object], repeats: int) -> float:
    """Median milliseconds of `call()` over `repeats` runs, after one warm-up run."""
    call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)
