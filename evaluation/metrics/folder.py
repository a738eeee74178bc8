"""Score a folder of predictions against a folder of ground truth, case by case."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from casefiles import CaseError, discover_cases
from common.dask_cluster import dask_client
from evaluation.metrics.files import load_ground_truth, load_prediction
from evaluation.metrics.rules import TOLERANCE, score_case


@dataclass(frozen=True)
class CaseScore:
    """Scores of one case; `error` says why its prediction was scored 0."""

    case: str
    dsc: float
    nsd: float
    label_dsc: tuple[float, ...]
    label_nsd: tuple[float, ...]
    error: str | None = None


def evaluate_case(
    case: str,
    gt_dir: Path,
    seg_dir: Path,
    spacing_order: str = "array",
    tolerance: float = TOLERANCE,
) -> CaseScore:
    """Score one case; an unusable prediction scores 0 with the reason in `error`."""
    truth = load_ground_truth(gt_dir / case, spacing_order)
    try:
        segs = load_prediction(seg_dir / case, truth.gts.shape)
    except CaseError as error:
        num_labels = int(truth.gts.max()) if truth.gts.size else 0
        zeros = (0.0,) * num_labels
        return CaseScore(case, 0.0, 0.0, zeros, zeros, error.problem)
    score = score_case(truth.gts, segs, truth.spacing, tolerance)
    return CaseScore(case, score.dsc, score.nsd, score.label_dsc, score.label_nsd)


def evaluate_folder(
    gt_dir: Path,
    seg_dir: Path,
    spacing_order: str = "array",
    tolerance: float = TOLERANCE,
    workers: int = 1,
    dask: str | None = None,
) -> list[CaseScore]:
    """Score every ground-truth case (sorted by name), in `workers` processes, or on the Dask cluster at `dask`
    (`local:N`: N worker processes started here)."""
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if not seg_dir.is_dir():
        raise FileNotFoundError(f"{seg_dir} does not exist or is not a folder")
    cases = [path.name for path in discover_cases(gt_dir)]
    if not cases:
        raise ValueError(f"no .npz ground-truth files in {gt_dir}")
    score = partial(evaluate_case, gt_dir=gt_dir, seg_dir=seg_dir, spacing_order=spacing_order, tolerance=tolerance)
    if dask is not None:
        # Workers elsewhere read the folders by absolute path, from storage they all see.
        score = partial(score, gt_dir=gt_dir.resolve(), seg_dir=seg_dir.resolve())
        with dask_client(dask) as client:
            return client.gather(client.map(score, cases, pure=False))
    if workers == 1:
        return [score(case) for case in cases]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(score, cases))


def unmatched_predictions(gt_dir: Path, seg_dir: Path) -> list[str]:
    """Prediction files with no ground truth of the same name (the scoring ignores them)."""
    names = {path.name for path in discover_cases(seg_dir)}
    return sorted(names - {path.name for path in discover_cases(gt_dir)})
