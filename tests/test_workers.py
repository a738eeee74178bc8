"""Parallel runs: --workers N and --dask give a serial run's outputs, and survive dead workers, signals and reruns."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path

import numpy as np
import pytest

import inference.__main__ as cli
from casefiles import discover_cases
from evaluation.metrics.folder import evaluate_folder
from inference.interrupts import CaseTimeout, deadline
from inference.memory import available_memory
from inference.pipeline import Status, process_case
from inference.routing import AUTO, Routing
from inference.schedule import PlannedCase, largest_first, plan_case
from inference.segmenter import Segmenter
from inference.settings import RunSettings
from inference.workers import Slot, Task, describe_exit, hand_out
from tests.helpers import BoxEchoBackend, echo_segmenter
from tests.test_pipeline import write_good_bad_good

REPO = Path(__file__).resolve().parents[1]
DOOMED = "3DBox_MR_0003.npz"


@pytest.fixture(scope="module")
def crops(demo_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Small crops of the real demo cases: a 2D image, three MR slabs of different depths, a nuclei volume."""
    inputs = tmp_path_factory.mktemp("crops")
    with np.load(demo_data / "inputs" / "2DBox_Microscope_0001.npz") as data:
        np.savez_compressed(inputs / "2DBox_Microscope_0001.npz", imgs=data["imgs"][:128, :128],
                            boxes=np.array([[10, 10, 60, 60], [40, 50, 120, 100]]))
    with np.load(demo_data / "inputs" / "3DBox_MR_0003.npz") as data:
        for index, depth in ((2, 3), (3, 5), (4, 4)):
            np.savez_compressed(inputs / f"3DBox_MR_000{index}.npz", imgs=data["imgs"][10 : 10 + depth],
                                boxes=np.array([[3, 2, 0, 73, 181, depth - 1]]), spacing=data["spacing"])
    with np.load(demo_data / "inputs" / "3DBox_Microscope_0002.npz") as data:
        np.savez_compressed(inputs / "3DBox_Microscope_0005.npz", imgs=data["imgs"][12:16],
                            boxes=np.array([[5, 5, 0, 40, 40, 3], [20, 10, 1, 55, 50, 2]]), spacing=data["spacing"])
    return inputs


def run(monkeypatch: pytest.MonkeyPatch, build: object, *args: str) -> int:
    """`python -m inference ARGS` in this process, its workers building with `build`."""
    monkeypatch.setattr(cli, "build_segmenter", build)
    return cli.main([*args, "--no-progress"])


def segs(folder: Path) -> dict[str, np.ndarray]:
    """Every output of a folder, by name; the folder holds nothing else (no temporary files)."""
    names = sorted(os.listdir(folder))
    assert all(name.endswith(".npz") and not name.startswith(".") for name in names), names
    out = {}
    for name in names:
        with np.load(folder / name) as data:
            out[name] = data["segs"]
    return out


def record(path: Path) -> dict:
    """A JSON run record, with its cases by name."""
    text = json.loads(path.read_text())
    text["by_case"] = {row["case"]: row for row in text["cases"]}
    return text


def assert_same_outputs(one: Path, other: Path) -> None:
    first, second = segs(one), segs(other)
    assert sorted(first) == sorted(second)
    for name in first:
        assert first[name].dtype == second[name].dtype and np.array_equal(first[name], second[name]), name


# --- the real models: every way of running gives the same outputs -------------------------------


def test_workers_and_dask_write_what_a_serial_run_writes(crops: Path, exported_litemedsam: list[Path],
                                                         tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    common = ["-i", str(crops), "--threads", "1", "--no-progress"]
    assert cli.main([*common, "-o", str(tmp_path / "serial")]) == 0
    assert cli.main([*common, "-o", str(tmp_path / "workers"), "--workers", "2",
                     "--record", str(tmp_path / "workers.json")]) == 0
    assert cli.main([*common, "-o", str(tmp_path / "dask"), "--dask", "local:2",
                     "--record", str(tmp_path / "dask.json")]) == 0
    assert_same_outputs(tmp_path / "serial", tmp_path / "workers")
    assert_same_outputs(tmp_path / "serial", tmp_path / "dask")
    for name in ("workers", "dask"):
        done = record(tmp_path / f"{name}.json")
        assert done["counts"] == {"ok": 5}
        # Each worker loaded the models once and says how much memory it peaked at.
        assert 1 <= len(done["workers"]) <= 2 and sum(w["cases"] for w in done["workers"]) == 5
        assert all(100 < w["peak_rss_mb"] < 4096 for w in done["workers"])
        assert {row["model"] for row in done["cases"]} == {"swiftmedsam-v2"}


def test_evaluation_on_dask_scores_like_the_serial_run(demo_data: Path, tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    seg = tmp_path / "seg"
    seg.mkdir()
    for path in discover_cases(demo_data / "gts"):
        with np.load(path) as data:
            gts = data["gts"]
        np.savez_compressed(seg / path.name, segs=np.roll(gts, 3, axis=-1))  # a near miss: NSD below 1
    serial = evaluate_folder(demo_data / "gts", seg)
    assert serial == evaluate_folder(demo_data / "gts", seg, dask="local:2")
    assert all(0.2 < score.nsd < 1 for score in serial)


# --- scheduling ------------------------------------------------------------------------------------


def test_cases_go_largest_first_within_the_model_order(crops: Path) -> None:
    routing = Routing("litemedsam", {"MR": "swiftmedsam-v2"})
    segmenter = Segmenter(RunSettings(model=AUTO), lambda model: BoxEchoBackend(), routing)
    order = [planned.path.name for planned in largest_first(segmenter, discover_cases(crops))]
    # litemedsam's cases (Microscope, the fallback) first, then the MR slabs by depth.
    assert order == ["2DBox_Microscope_0001.npz", "3DBox_Microscope_0005.npz",
                     "3DBox_MR_0003.npz", "3DBox_MR_0004.npz", "3DBox_MR_0002.npz"]
    assert plan_case(crops / "3DBox_MR_0003.npz").voxels == 5 * 185 * 149


class Recorder:
    """A worker's pipe that keeps what is sent."""

    def __init__(self) -> None:
        self.sent: list[Task] = []

    def send(self, task: Task) -> None:
        self.sent.append(task)


def test_a_case_handed_out_holds_back_the_memory_of_the_busy_workers_cases(tmp_path: Path) -> None:
    busy, idle, starting = (Slot(None, Recorder(), ready=True), Slot(None, Recorder(), ready=True),
                            Slot(None, Recorder()))
    busy.task = PlannedCase(tmp_path / "a.npz", 10, 3 * 2**30)
    queue = deque([PlannedCase(tmp_path / "b.npz", 5, 2**30), PlannedCase(tmp_path / "c.npz", 1, 2**20)])
    hand_out([busy, idle, starting], queue)
    assert idle.connection.sent == [Task(tmp_path / "b.npz", 3 * 2**30)]
    assert busy.connection.sent == starting.connection.sent == []  # busy, and not ready yet
    assert [planned.path.name for planned in queue] == ["c.npz"]


def test_memory_held_back_for_other_workers_can_refuse_a_case(crops: Path, tmp_path: Path) -> None:
    segmenter = echo_segmenter()(RunSettings())
    path = crops / "3DBox_MR_0003.npz"
    assert process_case(segmenter, path, tmp_path).ok
    outcome = process_case(segmenter, path, tmp_path / "refused", reserved_memory=available_memory())
    assert outcome.status is Status.FAILED and "too large for the memory given" in outcome.error
    assert not (tmp_path / "refused" / path.name).exists()


# --- faults -------------------------------------------------------------------------------------------


class DyingSegmenter(Segmenter):
    """Kills its own process (as the kernel's out-of-memory killer would) when it meets DOOMED, once per
    `marker` file, or every time without one."""

    marker: Path | None = None

    def segment(self, case):
        if case.name == DOOMED and (self.marker is None or not self.marker.exists()):
            if self.marker is not None:
                self.marker.touch()
            os.kill(os.getpid(), signal.SIGKILL)
        return super().segment(case)


class DyingBuild:
    """The build of DyingSegmenters on the scripted backend (picklable, for the worker processes)."""

    def __init__(self, marker: Path | None = None) -> None:
        self.marker = marker

    def __call__(self, settings: RunSettings, wrap: object = None, *, load_now: bool = True) -> Segmenter:
        segmenter = DyingSegmenter(settings, lambda model: BoxEchoBackend(),
                                   echo_segmenter()(settings).routing)
        segmenter.marker = self.marker
        return segmenter


def test_a_killed_worker_costs_only_its_case_and_a_new_worker_takes_its_place(
    crops: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    outputs, path = tmp_path / "out", tmp_path / "run.json"
    status = run(monkeypatch, DyingBuild(), "-i", str(crops), "-o", str(outputs), "--workers", "2",
                 "--threads", "1", "--record", str(path))
    assert status == 1
    done = record(path)
    assert done["counts"] == {"ok": 4, "failed": 1}
    dead = done["by_case"][DOOMED]
    assert dead["status"] == "failed"
    assert dead["error"] == f"{DOOMED}: its worker process (pid {dead['worker']}) was killed by SIGKILL (out of memory?) " \
                            "while segmenting it"
    # DOOMED is the largest case, so it goes first and other cases were waiting when its worker died.
    assert f"started in place of {dead['worker']}" in caplog.text
    assert {row["worker"] for row in done["cases"]} - {dead["worker"]}  # the others ran elsewhere
    assert sorted(segs(outputs)) == sorted(p.name for p in discover_cases(crops) if p.name != DOOMED)
    assert f"FAILED {dead['error']}" in caplog.text
    assert dead["error"] in caplog.text[caplog.text.index("failed cases:"):]


def test_dask_runs_a_lost_workers_case_again_and_the_record_shows_it(
    crops: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("distributed")
    outputs, path = tmp_path / "out", tmp_path / "run.json"
    status = run(monkeypatch, DyingBuild(tmp_path / "killed-once"), "-i", str(crops), "-o", str(outputs),
                 "--dask", "local:2", "--threads", "1", "--record", str(path))
    assert status == 0
    done = record(path)
    assert done["counts"] == {"ok": 5}
    assert done["by_case"][DOOMED]["rescheduled"] == 1
    # A case queued on the lost worker behind DOOMED is counted too: Dask sent it elsewhere as well.
    assert {row["rescheduled"] for row in done["cases"]} <= {0, 1}
    assert_same_outputs_as_echo(crops, outputs, tmp_path / "serial", monkeypatch)


def assert_same_outputs_as_echo(crops: Path, outputs: Path, serial: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The outputs equal a serial run's on the scripted backend."""
    assert run(monkeypatch, echo_segmenter(), "-i", str(crops), "-o", str(serial), "--threads", "1") == 0
    assert_same_outputs(serial, outputs)


def test_a_bad_case_among_good_ones_fails_alone_with_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    inputs, outputs = tmp_path / "in", tmp_path / "out"
    write_good_bad_good(inputs)
    status = run(monkeypatch, echo_segmenter(), "-i", str(inputs), "-o", str(outputs), "--workers", "2",
                 "--threads", "1", "--record", str(tmp_path / "run.csv"))
    assert status == 1
    assert sorted(segs(outputs)) == ["2DBox_US_0001.npz", "2DBox_US_0003.npz"]
    rows = [line.split(",")[:2] for line in (tmp_path / "run.csv").read_text().splitlines()[1:]]
    assert sorted(rows) == [["2DBox_US_0001.npz", "ok"], ["2DBox_US_0002.npz", "failed"], ["2DBox_US_0003.npz", "ok"]]
    # The worker's log line reaches this process's log, once.
    assert caplog.text.count("FAILED 2DBox_US_0002.npz: missing key(s) ['boxes']") == 1
    assert "2DBox_US_0002.npz: missing key(s) ['boxes']" in caplog.text[caplog.text.index("failed cases:"):]


# The CLI with --workers on a slow scripted backend, in a fresh interpreter so that it can be signalled.
SLOW_WORKERS = """
import sys
import inference.__main__ as cli
from tests.helpers import echo_segmenter
from tests.test_faults import SlowBackend
cli.build_segmenter = echo_segmenter(SlowBackend(float(sys.argv[1])))
sys.exit(cli.main([*sys.argv[2:], "--no-progress"]))
"""


def test_sigterm_stops_the_workers_and_resume_finishes_the_run(
    crops: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outputs, log = tmp_path / "out", tmp_path / "run.log"
    # 0.5 s per slice: the 2D case and the 3-slice slab end first, then SIGTERM reaches two busy workers.
    command = [sys.executable, "-c", SLOW_WORKERS, "0.5", "-i", str(crops), "-o", str(outputs), "--workers", "2",
               "--threads", "1", "--log", str(log), "--model", "litemedsam"]
    started = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while (not outputs.is_dir() or not os.listdir(outputs)) and started.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    started.send_signal(signal.SIGTERM)
    assert started.wait(timeout=120) == 128 + signal.SIGTERM

    done = record(log.with_suffix(".record.json"))
    statuses = {name: row["status"] for name, row in done["by_case"].items()}
    assert done["stopped_by"] == "SIGTERM" and len(statuses) == 5
    finished = sorted(name for name, status in statuses.items() if status == "ok")
    assert finished and sorted(segs(outputs)) == finished  # only complete outputs, no temporary files
    assert set(statuses.values()) <= {"ok", "interrupted", "not started"} and "interrupted" in statuses.values()
    text = log.read_text()
    assert f"stopped by SIGTERM: {len(finished)} case(s) written, 0 failed" in text
    for name, status in statuses.items():
        if status == "interrupted":
            assert f"STOPPED {name}: interrupted by SIGTERM before it finished" in text

    # A rerun with --resume does only what is missing, and ends as a serial run would.
    mtimes = {name: (outputs / name).stat().st_mtime_ns for name in finished}
    again = tmp_path / "again.json"
    assert run(monkeypatch, echo_segmenter(), "-i", str(crops), "-o", str(outputs), "--workers", "2",
               "--threads", "1", "--resume", "--model", "litemedsam", "--record", str(again)) == 0
    resumed = {name: row["status"] for name, row in record(again)["by_case"].items()}
    assert resumed == {name: "skipped" if name in finished else "ok" for name in statuses}
    assert {name: (outputs / name).stat().st_mtime_ns for name in finished} == mtimes
    serial = tmp_path / "serial"
    assert run(monkeypatch, echo_segmenter(), "-i", str(crops), "-o", str(serial), "--model", "litemedsam") == 0
    assert_same_outputs(serial, outputs)


def test_exit_codes_are_described() -> None:
    assert describe_exit(-signal.SIGKILL) == "was killed by SIGKILL (out of memory?)"
    assert describe_exit(-signal.SIGSEGV) == "was killed by SIGSEGV"
    assert describe_exit(1) == "exited with status 1"


def test_workers_and_dask_exclude_each_other_and_profile(tmp_path: Path) -> None:
    for extra in (["--workers", "2", "--dask", "local:2"], ["--workers", "2", "--profile", "p.json"],
                  ["--dask", "local:0"], ["--workers", "0"]):
        with pytest.raises(SystemExit) as stopped:
            cli.parse_args(["-i", str(tmp_path), "-o", str(tmp_path / "out"), *extra])
        assert stopped.value.code == 2, extra


def test_a_case_timeout_also_holds_in_a_thread_that_is_not_the_main_one() -> None:
    # Dask runs each case in a task thread, where no signal handler can run.
    caught: list[BaseException] = []

    def slow_case() -> None:
        start = time.monotonic()
        try:
            with deadline(0.2):
                while time.monotonic() - start < 10:
                    pass
        except CaseTimeout as err:
            caught.append(err)
        caught.append(time.monotonic() - start)

    worker = threading.Thread(target=slow_case)
    worker.start()
    worker.join()
    assert str(caught[0]) == "abandoned after the case timeout of 0.2 s" and caught[1] < 2


def test_workers_that_cannot_load_their_models_stop_the_run_before_any_case(
    crops: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    status = run(monkeypatch, broken_build, "-i", str(crops), "-o", str(tmp_path / "out"), "--workers", "2",
                 "--threads", "1")
    assert status == 2
    assert "a worker could not load its models: OSError: no exported files here" in caplog.text
    assert not (tmp_path / "out").exists() or os.listdir(tmp_path / "out") == []


def broken_build(settings: RunSettings, wrap: object = None, *, load_now: bool = True) -> Segmenter:
    """A build whose models cannot load in the workers (the main process loads none)."""
    if load_now:
        raise OSError("no exported files here")
    return echo_segmenter()(settings)
