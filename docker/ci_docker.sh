#!/usr/bin/env bash
# CI stage for the inference image: daemon, base image, image, then tests/test_docker.py.
#
# Usage (from anywhere; as root, or with sudo rights for apt-get and dockerd):
#   docker/ci_docker.sh [--build-only]
#
# --build-only stops after building the image (the caller runs tests/test_docker.py
# with the rest of the suite).
#
# Environment:
#   PYTHON   interpreter that has pytest and numpy (default: python, else python3)
#
# Where the environment cannot run Docker this stage does not fail CI: if docker.io and
# debootstrap cannot be installed, no daemon comes up, the base image cannot be built
# (no Debian mirror), or the exported ONNX models are missing and cannot be exported,
# it prints one line "SKIPPED docker: <reason>" and exits 0. A failing `docker build`
# or a failing test exits non-zero. Safe to run again: a running daemon, the base image
# and Docker's build cache are reused.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOG_DIR="$(mktemp -d "${TMPDIR:-/tmp}/ci_docker.XXXXXX")"
trap 'rm -rf "$LOG_DIR"' EXIT

log() { printf '[ci_docker] %s\n' "$*" >&2; }
skip() {
    printf 'SKIPPED docker: %s\n' "$*"
    exit 0
}
# Run a step with its output in a log file; on failure show the tail and return non-zero.
step() {
    local name="$1"
    shift
    log "$name"
    if "$@" >"$LOG_DIR/$name.log" 2>&1; then
        return 0
    fi
    log "$name failed; last lines:"
    tail -n 15 "$LOG_DIR/$name.log" >&2
    return 1
}
last_error() { grep -h 'ERROR' "$LOG_DIR/$1.log" | tail -n 1 | sed 's/^.*ERROR: //'; }

if [ -z "${PYTHON:-}" ]; then
    if command -v python >/dev/null 2>&1; then PYTHON=python; else PYTHON=python3; fi
fi

cd "$REPO_ROOT"

step daemon docker/build_base_image.sh --daemon-only \
    || skip "no Docker daemon: $(last_error daemon || true)"

step base_image docker/build_base_image.sh \
    || skip "base image python:3.11-slim could not be built: $(last_error base_image || true)"

if ! "$PYTHON" -m checkpoints verify --exported >/dev/null 2>&1; then
    log "no verified exported models; running scripts/setup.sh"
    step export bash scripts/setup.sh \
        || skip "exported ONNX models missing and 'bash scripts/setup.sh' failed"
fi

# From here on a failure is the project's, not the machine's.
log "docker/build_image.sh"
docker/build_image.sh

if [ "${1:-}" = "--build-only" ]; then
    exit 0
fi

log "$PYTHON -m pytest tests/test_docker.py"
"$PYTHON" -m pytest tests/test_docker.py -v -rs -s
