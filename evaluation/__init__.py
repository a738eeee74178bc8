"""Evaluation in three parts, each with its command:

- `metrics` scores predictions as the challenge does (DSC, NSD): `python -m evaluation.metrics`;
- `runtime` times each case alone, as the organisers did: `python -m evaluation.runtime`;
- `report` joins scores and times into the per-modality leaderboard: `python -m evaluation.report`.

`report` reads what the other two write; neither of them imports it, and nothing
here imports the models.
"""
