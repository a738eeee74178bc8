"""Leaderboard tables, runtime sources and figures of `python -m evaluation.report`."""

from __future__ import annotations

import csv
import math

import matplotlib.image
import numpy as np
import pytest

from evaluation.metrics.table import read_metrics
from evaluation.report.__main__ import main
from evaluation.report.figures import box_segments, label_boundaries, pick_slice
from evaluation.report.leaderboard import aggregate, join
from evaluation.runtime.table import Timing, read_runtime

METRICS = "case,dsc,nsd\n2DBox_US_0001.npz,0.8,0.9\n2DBox_US_0002.npz,0.6,0.5\n3DBox_CT_0001.npz,,0.0\n3DBox_CT_0002.npz,0.7,0.75\n"


def test_runtime_csv_from_inference_or_from_the_harness(tmp_path) -> None:
    inference = tmp_path / "timings.csv"
    inference.write_text("case,seconds\n2DBox_US_0001.npz,1.5\n")
    harness = tmp_path / "runtime.csv"
    harness.write_text("case,seconds,peak_mb,ok\n2DBox_US_0001.npz,2.5,300.0,true\n3DBox_CT_0001.npz,9.0,,false\n")
    plain = read_runtime(inference)["2DBox_US_0001.npz"]
    assert plain.seconds == 1.5 and math.isnan(plain.peak_mb) and plain.ok is None
    assert read_runtime(harness)["2DBox_US_0001.npz"] == Timing(2.5, 300.0, True)
    assert read_runtime(harness)["3DBox_CT_0001.npz"].ok is False
    bad = tmp_path / "bad.csv"
    bad.write_text("name,time\nx,1\n")
    with pytest.raises(ValueError, match="missing column"):
        read_runtime(bad)


def test_means_per_modality_and_overall_leave_nan_out(tmp_path) -> None:
    metrics = tmp_path / "metrics.csv"
    metrics.write_text(METRICS)
    runtime = {"2DBox_US_0001.npz": Timing(1.0), "2DBox_US_0002.npz": Timing(3.0), "3DBox_CT_0002.npz": Timing(10.0)}
    groups = {g.name: g for g in aggregate(join(read_metrics(metrics), runtime))}
    assert list(groups) == ["CT", "US", "Overall"]
    assert (groups["US"].cases, groups["US"].dsc, groups["US"].nsd, groups["US"].seconds) == (2, 0.7, 0.7, 2.0)
    assert groups["CT"].dsc == 0.7 and groups["CT"].nsd == 0.375 and groups["CT"].seconds == 10.0
    assert groups["Overall"].dsc == pytest.approx(0.7) and groups["Overall"].nsd == pytest.approx(2.15 / 4)
    assert groups["Overall"].seconds == pytest.approx(14 / 3)


def test_label_boundaries_box_outlines_and_slice_choice() -> None:
    labels = np.zeros((5, 6), np.uint8)
    labels[1:4, 1:3], labels[1:4, 3:5] = 1, 2
    edge = label_boundaries(labels)
    # 3x2 objects: every pixel touches background or the other label.
    assert edge.sum() == 12 and not edge[0].any()
    big = np.ones((5, 5), np.uint8)
    assert label_boundaries(big).sum() == 16  # the image edge counts, the centre 3x3 does not
    boxes_3d = np.array([[1, 2, 0, 5, 6, 2], [1, 2, 4, 5, 6, 6]])
    assert box_segments(boxes_3d, 1) == [[(1, 2), (5, 2), (5, 6), (1, 6), (1, 2)]]
    assert len(box_segments(np.array([[0, 0, 3, 3], [1, 1, 2, 2]]), None)) == 2
    volume = np.zeros((4, 3, 3), np.uint8)
    volume[2, :2, :2] = 1
    assert pick_slice(volume) == 2
    assert pick_slice(np.zeros((4, 3, 3), np.uint8)) == 2


def test_report_writes_tables_figures_and_prints_seconds(tmp_path, capsys) -> None:
    inputs, gts, segs = tmp_path / "inputs", tmp_path / "gts", tmp_path / "segs"
    for folder in (inputs, gts, segs):
        folder.mkdir()
    labels = np.zeros((20, 30), np.uint16)
    labels[3:9, 4:12], labels[12:18, 15:25] = 1, 2
    np.savez_compressed(inputs / "2DBox_US_0001.npz", imgs=np.zeros((20, 30, 3), np.uint8),
                        boxes=np.array([[4, 3, 11, 8], [15, 12, 24, 17]]))
    np.savez_compressed(gts / "2DBox_US_0001.npz", gts=labels)
    np.savez_compressed(segs / "2DBox_US_0001.npz", segs=labels)
    volume = np.zeros((6, 16, 16), np.uint8)
    volume[1:5, 4:10, 4:10] = 1
    np.savez_compressed(inputs / "3DBox_CT_0001.npz", imgs=volume * 200, boxes=np.array([[4, 4, 1, 9, 9, 4]]))
    np.savez_compressed(gts / "3DBox_CT_0001.npz", gts=volume, spacing=np.array([2.0, 1.0, 1.0]))
    metrics, runtime, out = tmp_path / "metrics.csv", tmp_path / "runtime.csv", tmp_path / "report"
    metrics.write_text("case,dsc,nsd\n2DBox_US_0001.npz,1.0,1.0\n3DBox_CT_0001.npz,0.0,0.0\n")
    runtime.write_text("case,seconds\n2DBox_US_0001.npz,1.25\n3DBox_CT_0001.npz,7.5\n")
    assert main(["--metrics", str(metrics), "--runtime", str(runtime), "--out", str(out),
                 "--inputs", str(inputs), "--gt", str(gts), "--seg", str(segs)]) == 0
    printed = capsys.readouterr().out
    assert "| 2DBox_US_0001.npz | US | 100.00 | 100.00 | 1.25 | n/a |" in printed
    assert "| **Overall** | 2 | 50.00 | 50.00 | 4.38 |" in printed
    assert "| CT | 1 | 0.00 | 0.00 | 7.50 |" in (out / "leaderboard.md").read_text()
    with (out / "leaderboard.csv").open(newline="") as handle:
        assert list(csv.DictReader(handle))[-1] == {
            "modality": "Overall", "cases": "2", "dsc": "0.5000", "nsd": "0.5000", "seconds": "4.3750"}
    for png in (out / "modalities.png", out / "overlays" / "2DBox_US_0001.png", out / "overlays" / "3DBox_CT_0001.png"):
        picture = matplotlib.image.imread(png)
        assert picture.shape[0] >= 300 and picture.shape[1] >= 300
    # The 2D overlay shows the contours: green (GT) drawn under magenta (prediction).
    overlay = matplotlib.image.imread(out / "overlays" / "2DBox_US_0001.png")[..., :3]
    assert np.any(np.all(np.isclose(overlay, (1.0, 0.0, 1.0), atol=0.1), axis=-1))


def test_report_needs_all_overlay_folders(tmp_path) -> None:
    with pytest.raises(SystemExit):
        main(["--metrics", "m.csv", "--out", str(tmp_path), "--inputs", str(tmp_path)])
