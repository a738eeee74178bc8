"""Folder scoring and the `python -m evaluation.metrics` command."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest

from casefiles import CaseError
from evaluation.metrics.__main__ import main
from evaluation.metrics.files import load_ground_truth, order_spacing
from evaluation.metrics.rules import score_case
from evaluation.metrics.table import format_score
from tests.helpers import corrupt_deflate


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture()
def folders(tmp_path: Path) -> tuple[Path, Path]:
    """GT and prediction folders: two good cases and one of each kind of unusable prediction."""
    gt_dir, seg_dir = tmp_path / "gts", tmp_path / "segs"
    gt_dir.mkdir()
    seg_dir.mkdir()
    rng = np.random.default_rng(0)
    gts_2d = np.zeros((40, 50), np.uint16)
    gts_2d[5:15, 5:20], gts_2d[20:35, 25:45] = 1, 2
    gts_3d = np.zeros((10, 30, 30), np.uint8)
    gts_3d[2:8, 5:20, 5:15] = 1
    np.savez_compressed(gt_dir / "2DBox_US_0001.npz", gts=gts_2d)
    np.savez_compressed(seg_dir / "2DBox_US_0001.npz", segs=np.roll(gts_2d, 3, axis=1))
    np.savez_compressed(gt_dir / "3DBox_CT_0001.npz", gts=gts_3d, spacing=np.array([2.5, 0.8, 0.6]))
    np.savez_compressed(seg_dir / "3DBox_CT_0001.npz", segs=np.roll(gts_3d, 4, axis=2).astype(np.uint16))
    for number in range(1, 7):
        np.savez_compressed(gt_dir / f"3DBox_MR_000{number}.npz", gts=gts_3d, spacing=np.array([1.0, 1.0, 1.0]))
    # 0001 missing; 0002 wrong shape; 0003 not a zip; 0004 wrong key; 0005 a pickled object array;
    # 0006 a corrupt deflate stream behind an intact zip directory.
    np.savez_compressed(seg_dir / "3DBox_MR_0002.npz", segs=gts_3d[:, :, :10])
    (seg_dir / "3DBox_MR_0003.npz").write_bytes(rng.bytes(100))
    np.savez_compressed(seg_dir / "3DBox_MR_0004.npz", masks=gts_3d)
    np.savez(seg_dir / "3DBox_MR_0005.npz", segs=np.array([gts_3d], dtype=object))
    np.savez_compressed(seg_dir / "3DBox_MR_0006.npz", segs=gts_3d)
    corrupt_deflate(seg_dir / "3DBox_MR_0006.npz", "segs.npy")
    np.savez_compressed(seg_dir / "3DBox_MR_9999.npz", segs=gts_3d)  # no ground truth
    (seg_dir / "._3DBox_CT_0001.npz").write_bytes(b"macOS resource fork")  # hidden: never a case
    return gt_dir, seg_dir


def test_every_case_is_reported_and_unusable_predictions_score_zero(folders, tmp_path, capsys) -> None:
    gt_dir, seg_dir = folders
    out = tmp_path / "metrics.csv"
    assert main(["--seg", str(seg_dir), "--gt", str(gt_dir), "--csv", str(out)]) == 0
    rows = read_csv(out)
    assert [r["case"] for r in rows] == sorted(p.name for p in gt_dir.iterdir())
    by_case = {r["case"]: r for r in rows}
    for number in range(1, 7):
        assert by_case[f"3DBox_MR_000{number}.npz"] == {"case": f"3DBox_MR_000{number}.npz", "dsc": "0.0", "nsd": "0.0"}
    printed = capsys.readouterr().out
    assert "8 case(s) scored, 6 scored 0 for an unusable prediction." in printed
    assert "3DBox_MR_0001.npz: missing" in printed
    assert "3DBox_MR_0002.npz: segs shape (10, 30, 10), expected (10, 30, 30)" in printed
    assert "3DBox_MR_0003.npz: cannot read the npz file" in printed
    assert "3DBox_MR_0004.npz: missing key(s) ['segs']; found ['masks']" in printed
    assert "3DBox_MR_0005.npz: cannot read 'segs' (ValueError: Object arrays cannot be loaded" in printed
    assert "3DBox_MR_0006.npz: cannot read 'segs' (zlib.error:" in printed
    assert "1 prediction(s) without ground truth ignored: 3DBox_MR_9999.npz" in printed
    assert "mean over 8 case(s): DSC" in printed
    assert "2DBox_US_0001.npz" in printed.splitlines()[0]


def test_values_are_the_case_scores_rounded_to_four_decimals(folders, tmp_path) -> None:
    gt_dir, seg_dir = folders
    rounded, full = tmp_path / "rounded.csv", tmp_path / "full.csv"
    main(["--seg", str(seg_dir), "--gt", str(gt_dir), "--csv", str(rounded)])
    main(["--seg", str(seg_dir), "--gt", str(gt_dir), "--csv", str(full), "--full-precision"])
    truth = load_ground_truth(gt_dir / "3DBox_CT_0001.npz")
    with np.load(seg_dir / "3DBox_CT_0001.npz") as data:
        expected = score_case(truth.gts, data["segs"], truth.spacing)
    assert truth.spacing == (2.5, 0.8, 0.6)
    row = {r["case"]: r for r in read_csv(rounded)}["3DBox_CT_0001.npz"]
    assert row["dsc"] == repr(float(np.round(expected.dsc, 4)))
    assert row["nsd"] == repr(float(np.round(expected.nsd, 4)))
    assert 0.2 < expected.dsc < 1.0 and 0.0 < expected.nsd < 1.0
    full_row = {r["case"]: r for r in read_csv(full)}["3DBox_CT_0001.npz"]
    assert float(full_row["nsd"]) == expected.nsd


def test_per_label_rows_and_workers_give_the_same_numbers(folders, tmp_path) -> None:
    gt_dir, seg_dir = folders
    one, two, labels = tmp_path / "one.csv", tmp_path / "two.csv", tmp_path / "labels.csv"
    main(["--seg", str(seg_dir), "--gt", str(gt_dir), "--csv", str(one), "--per-label", str(labels), "--quiet"])
    main(["--seg", str(seg_dir), "--gt", str(gt_dir), "--csv", str(two), "--workers", "2", "--quiet"])
    assert one.read_text() == two.read_text()
    label_rows = read_csv(labels)
    us_rows = [r for r in label_rows if r["case"] == "2DBox_US_0001.npz"]
    assert [r["label"] for r in us_rows] == ["1", "2"]
    # A 3-pixel shift of a 10x15 and a 15x20 box: Dice 1 - 3/15 and 1 - 3/20.
    assert [float(r["dsc"]) for r in us_rows] == [0.8, 0.85]
    case_row = {r["case"]: r for r in read_csv(one)}["2DBox_US_0001.npz"]
    assert float(case_row["dsc"]) == 0.825
    assert len(label_rows) == 2 + 7  # two 2D labels, one label for each of the seven 3D cases


def test_spacing_order_xyz_reverses_the_stored_spacing(folders, tmp_path) -> None:
    gt_dir, seg_dir = folders
    stored, reordered = tmp_path / "stored.csv", tmp_path / "xyz.csv"
    main(["--seg", str(seg_dir), "--gt", str(gt_dir), "--csv", str(stored), "--full-precision"])
    main(["--seg", str(seg_dir), "--gt", str(gt_dir), "--csv", str(reordered), "--full-precision",
          "--spacing-order", "xyz"])
    truth = load_ground_truth(gt_dir / "3DBox_CT_0001.npz")
    with np.load(seg_dir / "3DBox_CT_0001.npz") as data:
        expected = score_case(truth.gts, data["segs"], (0.6, 0.8, 2.5))
    stored_nsd = float({r["case"]: r for r in read_csv(stored)}["3DBox_CT_0001.npz"]["nsd"])
    xyz_nsd = float({r["case"]: r for r in read_csv(reordered)}["3DBox_CT_0001.npz"]["nsd"])
    assert xyz_nsd == expected.nsd
    assert xyz_nsd != stored_nsd


def test_bad_folders_exit_with_an_error(tmp_path, capsys) -> None:
    assert main(["--seg", str(tmp_path), "--gt", str(tmp_path / "nope"), "--csv", str(tmp_path / "m.csv")]) == 2
    assert "does not exist or is not a folder" in capsys.readouterr().err
    assert main(["--seg", str(tmp_path), "--gt", str(tmp_path), "--csv", str(tmp_path / "m.csv")]) == 2
    assert "no .npz ground-truth files" in capsys.readouterr().err


def test_unreadable_ground_truth_is_a_case_error(tmp_path) -> None:
    (tmp_path / "3DBox_CT_0001.npz").write_bytes(b"junk")
    with pytest.raises(CaseError, match="3DBox_CT_0001.npz: cannot read the npz file"):
        load_ground_truth(tmp_path / "3DBox_CT_0001.npz")
    np.savez(tmp_path / "3DBox_CT_0002.npz", gts=np.zeros((3, 3, 3), np.uint8))
    with pytest.raises(CaseError, match="missing key.*spacing"):
        load_ground_truth(tmp_path / "3DBox_CT_0002.npz")
    np.savez(tmp_path / "2DBox_CT_0003.npz", gts=np.zeros((3, 3), np.float32))
    with pytest.raises(CaseError, match="integer"):
        load_ground_truth(tmp_path / "2DBox_CT_0003.npz")


def test_spacing_and_formatting() -> None:
    assert order_spacing(np.array([0.7, 0.8, 3.0]), "xyz") == (3.0, 0.8, 0.7)
    with pytest.raises(ValueError):
        order_spacing(np.array([1.0, 1.0, 1.0]), "zyx")
    assert format_score(math.nan) == ""
    assert format_score(0.123456) == "0.1235"
    assert format_score(1.0) == "1.0"
    assert format_score(0.123456, None) == "0.123456"
