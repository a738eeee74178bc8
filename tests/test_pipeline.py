"""Case processing and the CLI: label order, uint16 past 255, failures isolated per case."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import inference.__main__ as cli
from inference.cases import load_case
from inference.pipeline import process_case
from inference.segmenter import Segmenter
from inference.settings import RunSettings
from tests.helpers import echo_segmenter


def write_2d_case(folder: Path, name: str, boxes: np.ndarray, size: int = 256) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    image = np.random.default_rng(0).integers(0, 255, (size, size, 3), dtype=np.uint8)
    np.savez_compressed(folder / name, imgs=image, boxes=boxes)
    return folder / name


def write_good_bad_good(folder: Path) -> None:
    """Cases 0001 and 0003 are fine; 0002 has no boxes."""
    write_2d_case(folder, "2DBox_US_0001.npz", np.array([[10, 20, 100, 120]]))
    np.savez_compressed(folder / "2DBox_US_0002.npz", imgs=np.zeros((8, 8, 3), np.uint8))
    write_2d_case(folder, "2DBox_US_0003.npz", np.array([[0, 0, 50, 50]]))


def test_labels_follow_box_order_later_boxes_win_and_pass_255(tmp_path: Path) -> None:
    # 300 boxes on a diagonal; each overlaps the next, so later labels cover earlier ones.
    starts = np.arange(300) % 240
    boxes = np.stack([starts, starts, starts + 10, starts + 10], axis=1)
    path = write_2d_case(tmp_path, "2DBox_CT_0001.npz", boxes)
    labels = echo_segmenter()(RunSettings()).segment(load_case(path))
    assert labels.dtype == np.uint16
    assert labels.max() == 300
    assert labels[10, 10] == 251  # boxes 241..251 start again at 0..10 and paint over 1..11
    assert labels[249, 249] == 240  # box 240 (239..249) is the only one reaching here


def test_process_case_writes_and_reports_shape(tmp_path: Path) -> None:
    path = write_2d_case(tmp_path / "in", "2DBox_US_0002.npz", np.array([[10, 20, 100, 120]]))
    result = process_case(echo_segmenter()(RunSettings()), path, tmp_path / "out")
    assert result.ok and result.boxes == 1 and result.shape == (256, 256, 3)
    with np.load(tmp_path / "out" / "2DBox_US_0002.npz") as data:
        segs = data["segs"]
    assert segs.dtype == np.uint16 and set(np.unique(segs)) == {0, 1}
    assert np.array_equal(np.argwhere(segs)[[0, -1]], [[20, 10], [120, 100]])


def test_cli_runs_every_case_and_fails_at_the_end_naming_the_bad_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    inputs, outputs = tmp_path / "in", tmp_path / "out"
    write_good_bad_good(inputs)
    volume = np.random.default_rng(0).integers(0, 255, (6, 64, 64), dtype=np.uint8)
    np.savez_compressed(inputs / "3DBox_CT_0004.npz", imgs=volume, boxes=np.array([[5, 5, 0, 40, 40, 5]]),
                        spacing=np.array([2.0, 1.0, 1.0]))
    monkeypatch.setattr(cli, "build_segmenter", echo_segmenter())

    status = cli.main(["-i", str(inputs), "-o", str(outputs), "--timings", str(tmp_path / "t.csv"), "--no-progress"])

    assert status == 1
    assert sorted(p.name for p in outputs.iterdir()) == ["2DBox_US_0001.npz", "2DBox_US_0003.npz", "3DBox_CT_0004.npz"]
    assert "2DBox_US_0002.npz: missing key(s) ['boxes']" in caplog.text
    rows = (tmp_path / "t.csv").read_text().splitlines()
    assert rows[0] == "case,seconds,ok" and [r.split(",")[2] for r in rows[1:]] == ["1", "0", "1", "1"]
    with np.load(outputs / "3DBox_CT_0004.npz") as data:
        assert data["segs"].shape == (6, 64, 64) and (data["segs"][[0, 5]] == 1).any(axis=(1, 2)).all()


def test_a_bug_inside_a_case_logs_its_traceback_and_the_summary_lists_every_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    inputs, outputs = tmp_path / "in", tmp_path / "out"
    write_good_bad_good(inputs)
    real_segment = Segmenter.segment

    def segment_with_a_bug(segmenter, case):
        if case.name == "2DBox_US_0003.npz":
            raise IndexError("index 7 is out of bounds")
        return real_segment(segmenter, case)

    monkeypatch.setattr(Segmenter, "segment", segment_with_a_bug)
    monkeypatch.setattr(cli, "build_segmenter", echo_segmenter())

    status = cli.main(["-i", str(inputs), "-o", str(outputs), "--no-progress"])  # no -v

    assert status == 1
    assert sorted(p.name for p in outputs.iterdir()) == ["2DBox_US_0001.npz"]
    bad_file = [r for r in caplog.records if "2DBox_US_0002.npz" in r.getMessage() and r.exc_info]
    assert bad_file == []  # a file that breaks the contract: one line, no traceback
    [bug] = [r for r in caplog.records if r.exc_info]
    assert "2DBox_US_0003.npz" in bug.getMessage() and bug.exc_info[0] is IndexError
    assert "in segment_with_a_bug" in caplog.text  # the traceback is in the log
    summary = caplog.text[caplog.text.index("failed cases:"):]
    assert "2DBox_US_0002.npz: missing key(s) ['boxes']" in summary
    assert "2DBox_US_0003.npz: IndexError: index 7 is out of bounds" in summary


def test_cli_setup_error_exits_2(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    status = cli.main(["-i", str(tmp_path / "missing"), "-o", str(tmp_path / "out"), "--no-progress"])
    assert status == 2
    assert "does not exist" in caplog.text
