"""Faults a run must survive: fuzzed case files, slow cases, SIGTERM and Ctrl-C, reruns, unusable folders."""

from __future__ import annotations

import io as bytes_io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import inference.__main__ as cli
from casefiles import CaseError
from inference.cases import load_case
from tests.helpers import BoxEchoBackend, Poison, echo_segmenter

REPO = Path(__file__).resolve().parents[1]
FUZZ = settings(max_examples=150, deadline=2000, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


# --- the validator never raises anything but CaseError, and what it accepts is sound ------------


@st.composite
def case_files(draw: st.DrawFn) -> tuple[str, dict[str, np.ndarray]]:
    """A case name and arrays of any dtype and shape, each key present or not."""
    name = draw(st.sampled_from(["2DBox_US_0001.npz", "3DBox_CT_0001.npz"]))
    image_dtype = draw(st.sampled_from([np.uint8, np.int16, np.uint16, np.float32, np.float64, np.bool_]))
    image = draw(hnp.arrays(image_dtype, hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=6)))
    box_dtype = draw(st.sampled_from([np.int64, np.int8, np.float64, np.float32, np.uint16]))
    boxes = draw(hnp.arrays(box_dtype, hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=7)))
    spacing = draw(hnp.arrays(np.float64, draw(st.integers(0, 4))))
    arrays = {"imgs": image, "boxes": boxes, "spacing": spacing}
    present = draw(st.lists(st.sampled_from(sorted(arrays)), unique=True))
    return name, {key: arrays[key] for key in present}


def assert_sound(path: Path) -> None:
    """load_case raises only CaseError; a case it returns holds uint8 pixels and boxes inside them."""
    try:
        case = load_case(path, memory_available=2**30)
    except CaseError as err:
        assert str(err).startswith(f"{path.name}: ")
        return
    assert case.image.dtype == np.uint8
    assert case.boxes.dtype == np.int64 and len(case.boxes) == len(case.box_labels)
    assert (np.diff(case.box_labels) > 0).all() and (case.box_labels >= 1).all()
    half = case.boxes.shape[1] // 2
    sizes = np.array(case.spatial_shape[::-1] if case.is_3d else case.spatial_shape[1::-1])
    assert (case.boxes[:, :half] >= 0).all() and (case.boxes[:, half:] <= sizes - 1).all()
    assert (case.boxes[:, :half] <= case.boxes[:, half:]).all()


@FUZZ
@given(case=case_files())
def test_fuzzed_arrays_give_a_sound_case_or_a_case_error(tmp_path: Path, case: tuple[str, dict]) -> None:
    name, arrays = case
    path = tmp_path / name
    np.savez_compressed(path, **arrays)
    assert_sound(path)


@FUZZ
@given(cuts=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=4),
       truncate=st.one_of(st.none(), st.integers(0, 10**6)))
def test_fuzzed_bytes_give_a_sound_case_or_a_case_error(
    tmp_path: Path, cuts: list[tuple[int, int]], truncate: int | None
) -> None:
    buffer = bytes_io.BytesIO()
    np.savez_compressed(buffer, imgs=np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3),
                        boxes=np.array([[0, 0, 3, 2], [1, 1, 5, 3]]))
    data = bytearray(buffer.getvalue())
    for position, value in cuts:
        data[position % len(data)] = value
    path = tmp_path / "2DBox_US_0001.npz"
    path.write_bytes(bytes(data[:truncate]))
    assert_sound(path)


# --- a run: timeouts, Ctrl-C, --resume, the record ------------------------------------------------


class SlowBackend(BoxEchoBackend):
    """The scripted backend, `seconds` per encoder pass; on pass `interrupt_at` it sends itself SIGINT (Ctrl-C)."""

    def __init__(self, seconds: float, interrupt_at: int | None = None) -> None:
        super().__init__()
        self.seconds = seconds
        self.interrupt_at = interrupt_at

    def encode(self, image: np.ndarray) -> np.ndarray:
        time.sleep(self.seconds)
        if self.encodes + 1 == self.interrupt_at:
            os.kill(os.getpid(), signal.SIGINT)
        return super().encode(image)


@pytest.fixture
def three_cases(demo_data: Path, tmp_path: Path) -> Path:
    """A 2D crop and two 12-slice 3D crops of the real demo cases."""
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    with np.load(demo_data / "inputs" / "2DBox_Microscope_0001.npz") as data:
        np.savez_compressed(inputs / "2DBox_Microscope_0001.npz", imgs=data["imgs"][:128, :128],
                            boxes=np.array([[10, 10, 60, 60], [40, 50, 120, 100]]))
    with np.load(demo_data / "inputs" / "3DBox_MR_0003.npz") as data:
        for index in (2, 3):
            np.savez_compressed(inputs / f"3DBox_MR_000{index}.npz", imgs=data["imgs"][:12],
                                boxes=np.array([[3, 2, 0, 73, 181, 11]]))
    return inputs


# The CLI on SlowBackend in a fresh interpreter: signals in a process where the export
# tests ran NNCF's quantisation crashed it (an engine's state, not ours; production
# never loads NNCF, and the real-run SIGTERM test and the Docker tests cover the image).
SLOW_CLI = """
import sys
import inference.__main__ as cli
from tests.helpers import echo_segmenter
from tests.test_faults import SlowBackend
seconds, interrupt_at = float(sys.argv[1]), sys.argv[2]
backend = SlowBackend(seconds, None if interrupt_at == "-" else int(interrupt_at))
cli.build_segmenter = echo_segmenter(backend)
sys.exit(cli.main([*sys.argv[3:], "--no-progress"]))
"""


def run_slow_cli(seconds: float, interrupt_at: int | None, *args: str) -> int:
    """`python -m inference` on SlowBackend in its own process; its exit status."""
    command = [sys.executable, "-c", SLOW_CLI, str(seconds), "-" if interrupt_at is None else str(interrupt_at), *args]
    return subprocess.run(command, cwd=REPO, capture_output=True, timeout=300).returncode


def run_cli(monkeypatch: pytest.MonkeyPatch, backend: BoxEchoBackend, *args: str) -> int:
    """`python -m inference` in this process on the scripted `backend`."""
    monkeypatch.setattr(cli, "build_segmenter", echo_segmenter(backend))
    return cli.main([*args, "--no-progress"])


def read_record(path: Path) -> dict[str, str]:
    """Case -> status of a JSON run record."""
    return {row["case"]: row["status"] for row in json.loads(path.read_text())["cases"]}


def test_a_case_past_its_timeout_is_abandoned_and_the_next_one_runs(three_cases: Path, tmp_path: Path) -> None:
    outputs, record = tmp_path / "outputs", tmp_path / "record.json"
    # The 2D case encodes once (0.2 s); each 3D case twelve times (2.4 s), past 1 s.
    status = run_slow_cli(0.2, None, "-i", str(three_cases), "-o", str(outputs),
                          "--case-timeout", "1", "--record", str(record))
    assert status == 1
    assert read_record(record) == {"2DBox_Microscope_0001.npz": "ok", "3DBox_MR_0002.npz": "timed out",
                                   "3DBox_MR_0003.npz": "timed out"}
    rows = json.loads(record.read_text())["cases"]
    assert rows[1]["error"] == "3DBox_MR_0002.npz: abandoned after the case timeout of 1 s"
    assert 1.0 <= rows[1]["seconds"] < 1.0 + 0.2 + 0.5  # stopped within one encoder pass of the limit
    assert sorted(os.listdir(outputs)) == ["2DBox_Microscope_0001.npz"]


def test_ctrl_c_keeps_finished_outputs_and_records_what_was_not_done(three_cases: Path, tmp_path: Path) -> None:
    outputs, log = tmp_path / "outputs", tmp_path / "logs" / "run.log"
    # Pass 1 is the 2D case; pass 3 is the second slice of the first 3D case.
    status = run_slow_cli(0.0, 3, "-i", str(three_cases), "-o", str(outputs), "--log", str(log))
    assert status == 128 + signal.SIGINT
    assert sorted(os.listdir(outputs)) == ["2DBox_Microscope_0001.npz"]  # no temporary file left either
    record = log.with_suffix(".record.json")
    assert read_record(record) == {"2DBox_Microscope_0001.npz": "ok", "3DBox_MR_0002.npz": "interrupted",
                                   "3DBox_MR_0003.npz": "not started"}
    assert json.loads(record.read_text())["stopped_by"] == "SIGINT"
    assert "stopped by SIGINT: 1 case(s) written, 0 failed, 1 interrupted, 1 not started" in log.read_text()


def test_resume_skips_complete_outputs_and_redoes_missing_and_broken_ones(
    three_cases: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outputs, record = tmp_path / "outputs", tmp_path / "record.csv"
    assert run_cli(monkeypatch, BoxEchoBackend(), "-i", str(three_cases), "-o", str(outputs)) == 0
    kept = outputs / "2DBox_Microscope_0001.npz"
    kept_bytes, kept_mtime = kept.read_bytes(), kept.stat().st_mtime_ns
    (outputs / "3DBox_MR_0002.npz").unlink()
    broken = outputs / "3DBox_MR_0003.npz"
    broken.write_bytes(broken.read_bytes()[:100])  # e.g. copied by hand and cut short

    backend = BoxEchoBackend()
    status = run_cli(monkeypatch, backend, "-i", str(three_cases), "-o", str(outputs), "--resume",
                     "--record", str(record))

    assert status == 0
    assert record.read_text().splitlines()[0] == "case,status,seconds,error,warnings,model,worker,rescheduled"
    assert [line.split(",")[:2] for line in record.read_text().splitlines()[1:]] == [
        ["2DBox_Microscope_0001.npz", "skipped"], ["3DBox_MR_0002.npz", "ok"], ["3DBox_MR_0003.npz", "ok"]]
    assert kept.read_bytes() == kept_bytes and kept.stat().st_mtime_ns == kept_mtime
    assert backend.encodes == 24  # only the two 3D cases, 12 slices each
    with np.load(broken) as data:
        assert data["segs"].shape == (12, 185, 149) and data["segs"].any()


def test_sigterm_stops_a_real_run_with_complete_outputs_and_a_summary(
    demo_data: Path, exported_litemedsam: list[Path], tmp_path: Path
) -> None:
    outputs, log = tmp_path / "outputs", tmp_path / "run.log"
    run = subprocess.Popen(
        [sys.executable, "-m", "inference", "-i", str(demo_data / "inputs"), "-o", str(outputs), "--no-progress",
         "--log", str(log)],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    first = outputs / "2DBox_Microscope_0001.npz"  # the first case in name order, then two 3D cases
    deadline = time.monotonic() + 300
    while not first.exists() and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)  # well into the first 3D case
    run.send_signal(signal.SIGTERM)
    assert run.wait(timeout=120) == 128 + signal.SIGTERM
    assert os.listdir(outputs) == [first.name]
    with np.load(first) as data:
        assert data["segs"].shape == (512, 512) and data["segs"].max() == 125
    text = log.read_text()
    assert "STOPPED 3DBox_MR_0003.npz: interrupted by SIGTERM" in text
    assert "stopped by SIGTERM: 1 case(s) written, 0 failed, 1 interrupted, 1 not started" in text
    assert read_record(log.with_suffix(".record.json")) == {
        "2DBox_Microscope_0001.npz": "ok", "3DBox_MR_0003.npz": "interrupted", "3DBox_Microscope_0002.npz": "not started"}


# --- folders that cannot be used: a clear error before any work ----------------------------------


def test_a_missing_output_folder_is_created(three_cases: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    outputs = tmp_path / "new" / "outputs"
    assert run_cli(monkeypatch, BoxEchoBackend(), "-i", str(three_cases), "-o", str(outputs)) == 0
    assert len(os.listdir(outputs)) == 3


@pytest.mark.parametrize(
    ("output", "fragment"),
    [
        ("a_file", "exists and is not a folder"),
        ("a_file/outputs", "is not writable: Not a directory"),
        ("inputs", "is the input folder"),
        ("read_only", "is not writable: Permission denied"),
    ],
)
def test_an_unusable_output_folder_fails_before_the_model_loads(
    three_cases: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
    output: str, fragment: str,
) -> None:
    if output == "read_only":
        if os.geteuid() == 0:
            pytest.skip("root writes into read-only folders (the Docker test runs as a plain user)")
        (tmp_path / output).mkdir(mode=0o555)
    (tmp_path / "a_file").write_text("")
    loaded = []
    monkeypatch.setattr(cli, "build_segmenter", lambda *args: loaded.append(args))
    assert cli.main(["-i", str(three_cases), "-o", str(tmp_path / output), "--no-progress"]) == 2
    assert not loaded
    assert fragment in caplog.text


# --- weights: verified before use, never unpickled -----------------------------------------------


def test_a_checkpoint_holding_pickled_code_is_refused_without_running_it(tmp_path: Path) -> None:
    import torch

    from inference.build import build_model

    weights, marker = tmp_path / "weights.pth", tmp_path / "ran"
    torch.save({"model": Poison(marker)}, weights)
    with pytest.raises(Exception, match="Weights only load failed"):
        build_model("litemedsam", weights)
    assert not marker.exists()
