"""Helpers shared by test modules: a scripted backend, the demo run, the organisers' scoring, verified exports."""

from __future__ import annotations

import struct
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import surface_distance

from casefiles import discover_cases
from checkpoints.manifest import ChecksumError, verify_export
from inference.backends import Backend
from inference.pipeline import CaseOutcome, process_cases
from inference.propagation import Propagation
from inference.routing import AUTO, Routing, read_routing
from inference.segmenter import Segmenter, build_segmenter
from inference.settings import RunSettings
from inference.threads import available_cpus


def verified_export(model: str) -> list[Path]:
    """A model's exported files, verified against this machine's export record; the test fails with the fix if not."""
    try:
        return [record.path for record in verify_export(model).all_files()]
    except ChecksumError as err:
        pytest.fail(f"{err}; run: bash scripts/setup.sh")

# Floors a few points under the Dice measured with the default settings (--model auto: the student on these
# Microscope and MR cases; 2D nuclei 81.0, 3D nuclei 73.4, brain hemispheres 66.3; baseline propagation: 70.2, 59.0).
DICE_FLOORS = {
    "2DBox_Microscope_0001.npz": 0.78,
    "3DBox_Microscope_0002.npz": 0.70,
    "3DBox_MR_0003.npz": 0.62,
}


class BoxEchoBackend:
    """Encoder returns a fresh token per call; decoder returns logits that are positive
    inside the prompt box grown by `grow` model pixels (or nowhere if `empty`)."""

    decode_batch = 16

    def __init__(self, grow: int = 0, empty: bool = False, size: int = 256) -> None:
        self.grow = grow
        self.empty = empty
        self.size = size
        self.encodes = 0
        self.prompts: list[tuple[int, list[int]]] = []  # (embedding token, box)
        self.decode_calls = 0

    def encode(self, image: np.ndarray) -> np.ndarray:
        assert image.shape == (1, 3, self.size, self.size) and image.dtype == np.float32
        self.encodes += 1
        return np.full((1, 1, 1, 1), self.encodes, dtype=np.float32)

    def decode(self, embedding: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        self.decode_calls += 1
        logits = np.full((len(boxes), self.size, self.size), -10.0, dtype=np.float32)
        for i, box in enumerate(np.asarray(boxes, dtype=np.int64)):
            self.prompts.append((int(embedding.flat[0]), box.tolist()))
            if not self.empty:
                x0, y0, x1, y1 = np.clip(box + [-self.grow, -self.grow, self.grow, self.grow], 0, self.size - 1)
                logits[i, y0 : y1 + 1, x0 : x1 + 1] = 10.0
        return logits


@dataclass(frozen=True)
class EchoBuild:
    """A stand-in for the CLI's `build_segmenter`: the run's settings on `backend` (a fresh BoxEchoBackend) for
    every model; with `--model auto`, `routing` (default: the shipped table). Picklable, so worker processes
    can build with it too (each on its own copy of `backend`)."""

    backend: Backend | None = None
    routing: Routing | None = None

    def __call__(self, settings: RunSettings, wrap: Callable[[Backend], Backend] | None = None, *,
                 load_now: bool = True) -> Segmenter:
        chosen = self.backend or BoxEchoBackend()
        table = (self.routing or read_routing()) if settings.model == AUTO else None
        return Segmenter(settings, lambda model: chosen if wrap is None else wrap(chosen), table)


def echo_segmenter(backend: Backend | None = None, routing: Routing | None = None) -> EchoBuild:
    """The scripted `build_segmenter`: every model on `backend`, `routing` for `--model auto`."""
    return EchoBuild(backend, routing)


class Poison:
    """Unpickling this creates a marker file: proof that a loader ran pickled code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (Path.touch, (str(self.marker),))


def run_demo(inputs: Path, output: Path, propagation: Propagation) -> dict[str, CaseOutcome]:
    """Segment the demo inputs with LiteMedSAM on OpenVINO (the default); outcomes by case name."""
    segmenter = build_segmenter(RunSettings(threads=available_cpus(), propagation=propagation))
    outcomes = process_cases(segmenter, discover_cases(inputs), output)
    return {o.name: o for o in outcomes}


def organisers_score(gts: np.ndarray, segs: np.ndarray, spacing) -> tuple[float, float]:
    """compute_metrics.py of the organisers, on the DeepMind package (2D when spacing is None)."""
    with pytest.MonkeyPatch.context() as patch, warnings.catch_warnings():
        # The package predates numpy 2 (np.Inf, np.NaN) and scipy's namespace clean-up.
        patch.setattr(np, "Inf", np.inf, raising=False)
        patch.setattr(np, "NaN", np.nan, raising=False)
        warnings.simplefilter("ignore")
        labels = range(1, int(gts.max()) + 1)
        dsc = np.mean([surface_distance.compute_dice_coefficient(gts == i, segs == i) for i in labels])
        if not dsc > 0.2:
            return float(dsc), 0.0
        if spacing is None:
            gts, segs, spacing = gts[..., None], segs[..., None], (1.0, 1.0, 1.0)
        nsd = np.mean([
            surface_distance.compute_surface_dice_at_tolerance(
                surface_distance.compute_surface_distances(gts == i, segs == i, spacing), 2.0)
            for i in labels
        ])
        return float(dsc), float(nsd)


def corrupt_deflate(path: Path, member: str) -> None:
    """Make the deflate stream of one npz member invalid while the zip directory stays intact."""
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(member)
    with path.open("r+b") as handle:
        handle.seek(info.header_offset + 26)
        name_length, extra_length = struct.unpack("<HH", handle.read(4))
        # The first byte of the data: BFINAL=1 with the reserved block type 3.
        handle.seek(info.header_offset + 30 + name_length + extra_length)
        handle.write(b"\xff")
