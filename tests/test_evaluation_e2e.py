"""End to end on the real demo cases and the real LiteMedSAM predictions of the pipeline."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from evaluation.metrics.__main__ import main as metrics_main
from evaluation.metrics.files import load_ground_truth
from evaluation.report.__main__ import main as report_main
from tests.helpers import DICE_FLOORS, organisers_score


def test_demo_predictions_score_like_the_organisers_and_report(demo_data: Path, demo_predictions: Path,
                                                               tmp_path: Path, capsys) -> None:
    gt_dir = demo_data / "gts"
    cases = sorted(p.name for p in gt_dir.glob("*.npz"))
    assert any(c.startswith("2D") for c in cases) and any(c.startswith("3D") for c in cases)
    scores = tmp_path / "metrics.csv"
    assert metrics_main(["--seg", str(demo_predictions), "--gt", str(gt_dir), "--csv", str(scores),
                         "--full-precision", "--workers", "2"]) == 0
    assert f"{len(cases)} case(s) scored, 0 scored 0 for an unusable prediction." in capsys.readouterr().out
    with scores.open(newline="") as handle:
        rows = {r["case"]: (float(r["dsc"]), float(r["nsd"])) for r in csv.DictReader(handle)}
    assert sorted(rows) == cases

    for case in cases:
        truth = load_ground_truth(gt_dir / case)
        with np.load(demo_predictions / case) as data:
            segs = data["segs"]
        dsc, nsd = organisers_score(truth.gts, segs, truth.spacing)
        assert rows[case][0] == dsc, case
        assert abs(rows[case][1] - nsd) <= 1e-6, case
        # Real weights on box prompts from the ground truth: at the measured floors.
        assert dsc >= DICE_FLOORS[case], (case, dsc)

    out = tmp_path / "report"
    assert report_main(["--metrics", str(scores), "--out", str(out), "--inputs", str(demo_data / "inputs"),
                        "--gt", str(gt_dir), "--seg", str(demo_predictions), "--quiet"]) == 0
    assert "| **Overall** |" in capsys.readouterr().out
    assert sorted(p.name for p in (out / "overlays").glob("*.png")) == sorted(Path(c).stem + ".png" for c in cases)
    assert (out / "modalities.png").stat().st_size > 0
