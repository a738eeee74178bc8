#!/usr/bin/env bash
# End to end on the real demo cases: set-up (which builds the demo data), inference, scores and report.
#
# Usage: bash scripts/demo.sh [extra python -m inference options, e.g. --propagation baseline]
# Writes demo_data/ (inputs, gts), demo_outputs/ (segs) and runs/ (CSVs, report, overlays).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
PY="${VENV:-.venv}/bin/python"

mkdir -p runs
"$PY" -m inference -i demo_data/inputs -o demo_outputs --timings runs/timings.csv "$@"
"$PY" -m evaluation.metrics --seg demo_outputs --gt demo_data/gts --csv runs/metrics.csv --runtime runs/timings.csv
"$PY" -m evaluation.report --metrics runs/metrics.csv --runtime runs/timings.csv --out runs/report \
    --inputs demo_data/inputs --gt demo_data/gts --seg demo_outputs --quiet
echo "report: runs/report/leaderboard.md, overlays in runs/report/overlays/"
