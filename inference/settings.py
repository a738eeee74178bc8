"""The settings of one inference run, chosen once (by the CLI) and read by the code that needs them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from inference.propagation import Propagation
from inference.routing import AUTO


@dataclass(frozen=True)
class RunSettings:
    """Model, backend and precision; 3D propagation and slice step; threads; the per-case deadline."""

    model: str = AUTO  # each case by its modality (inference/routing.json), or one model's name
    backend: str = "openvino"
    precision: str = "f32"
    checkpoint: Path | None = None  # torch backend only: weights other than the manifest's
    threads: int = 1
    propagation: Propagation = Propagation.CLIPPED
    slice_step: int = 1  # 3D: decode every Nth slice from each box's middle, interpolate the masks between
    case_timeout: float | None = None  # seconds; None: no deadline
