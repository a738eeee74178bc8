#!/usr/bin/env bash
# One-time (idempotent) set-up: virtual environment, development dependencies,
# verified LiteMedSAM weights, the demo cases and the exported ONNX models.
# Leaves `git status` clean: everything it writes is ignored by git.
#
# Usage: bash scripts/setup.sh      (VENV=path overrides .venv)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
VENV="${VENV:-.venv}"
PY="$VENV/bin/python"

if [ ! -x "$PY" ]; then
    echo "[setup] creating $VENV" >&2
    python3 -m venv "$VENV"
fi
# Pinned torch==2.13.0 is a CPU wheel; an unpinned torch would pull several GB of CUDA.
# pip's output goes to a log shown only on failure (some machines' pip configs warn per package).
log="$(mktemp)"
if ! "$PY" -m pip install -q --disable-pip-version-check -r requirements-dev.txt >"$log" 2>&1; then
    grep -v "^WARNING: Location" "$log" | tail -n 30 >&2
    rm -f "$log"
    echo "[setup] pip install -r requirements-dev.txt failed" >&2
    exit 1
fi
rm -f "$log"

"$PY" -m checkpoints fetch
# The demo cases are the export's check images (and the demo's inputs); the int8
# encoder is calibrated on training cases instead, never on cases it is judged on.
[ -d demo_data/inputs ] || "$PY" -m demo --out demo_data
[ -d runs/images/train/inputs ] || "$PY" -m training.images --out runs/images
if ! "$PY" -m checkpoints verify --exported >/dev/null 2>&1 || [ ! -f checkpoints/exported/swiftmedsam-v2.json ] \
        || ! grep -q int8_calibration_cases checkpoints/exported/litemedsam.json \
        || ! grep -q int8_calibration_cases checkpoints/exported/swiftmedsam-v2.json; then
    echo "[setup] exporting LiteMedSAM and SwiftMedSAM-v2 to ONNX and OpenVINO IR (a few minutes, once)" >&2
    for model in litemedsam swiftmedsam-v2; do
        "$PY" -m inference.export --model "$model" --check-data demo_data/inputs \
            --calibration-data runs/images/train/inputs
    done
    "$PY" -m checkpoints verify --exported
fi
