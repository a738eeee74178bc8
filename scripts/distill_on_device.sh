#!/bin/sh
# Distil a SwiftMedSAM student on a lent GPU machine in one command, and leave in $OUT
# what must come back: the exported student weights, the run summary and each stage's
# metrics (the device tool returns at most 8 files of 16 MiB).
#
#   sh scripts/distill_on_device.sh DATA_DIR [python -m training options ...]
#
# DATA_DIR holds training cases (python -m training.images --out D writes D/train/inputs).
# The teacher's weights must be at checkpoints/weights/lite_medsam.pth. A device machine
# starts bare and keeps nothing, so the run folder (with the teacher cache, rebuilt on
# each machine) lives under /tmp and a run must end within one command. DEVICE (default
# cuda) and PYTHON (default python3) may be set.
set -eu
data=${1:?usage: sh scripts/distill_on_device.sh DATA_DIR [python -m training options]}
shift
out=${OUT:?set OUT to the folder whose files come back}
run=$(mktemp -d "${TMPDIR:-/tmp}/distill-run.XXXXXX")
"${PYTHON:-python3}" -m training --data "$data" --run-dir "$run" --device "${DEVICE:-cuda}" --no-progress "$@"
mkdir -p "$out"
cp "$run"/*.pth "$run/summary.json" "$out/"
metrics=""
for stage in "$run"/*/; do
    if [ -f "$stage/metrics.csv" ]; then
        name=$(basename "$stage")
        metrics="$metrics $name"
        cp "$stage/metrics.csv" "$out/$name.metrics.csv"
    fi
done
echo "student weights, summary.json and metrics of:$metrics in $out"
