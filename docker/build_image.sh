#!/usr/bin/env bash
# Build the inference image medsam-laptop:latest from this repository.
#
# Usage (from anywhere; needs root or membership in the docker group):
#   bash scripts/setup.sh               # once: exports checkpoints/exported/*.onnx and their records
#   docker/build_image.sh [--tag NAME] [extra `docker build` arguments...]
#
# Steps: make sure a Docker daemon answers and the base image python:3.11-slim exists
# (docker/build_base_image.sh builds it from Debian packages when Docker Hub is out of
# reach), check that the exported ONNX models and their records are there, then
#   docker build --network host -t medsam-laptop:latest .
#
# pip inside the build uses the same package index as pip on this machine: PIP_INDEX_URL,
# PIP_EXTRA_INDEX_URL and PIP_TRUSTED_HOST are taken from the environment or, failing
# that, from `pip config` (global.index-url, global.extra-index-url, global.trusted-host)
# and passed as build arguments. file:// indexes are left out (the build cannot see the
# host's disk). Only the Dockerfile's builder stage sees them: the image, its history and
# its environment hold none (this machine's build cache of that stage does).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TAG="medsam-laptop:latest"
EXTRA_ARGS=()

log() { printf '[build_image] %s\n' "$*" >&2; }
die() { printf '[build_image] ERROR: %s\n' "$*" >&2; exit 1; }

while [ $# -gt 0 ]; do
    case "$1" in
        --tag) [ $# -ge 2 ] || die "--tag needs a name"; TAG="$2"; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) EXTRA_ARGS+=("$1") ;;
    esac
    shift
done

# Daemon and base image (no-op when both are there).
"$REPO_ROOT/docker/build_base_image.sh"

shopt -s nullglob
onnx_files=("$REPO_ROOT"/checkpoints/exported/*.onnx "$REPO_ROOT"/checkpoints/exported/*.json)
shopt -u nullglob
if [ ${#onnx_files[@]} -eq 0 ]; then
    die "no exported ONNX models in checkpoints/exported/. Run 'bash scripts/setup.sh' first."
fi
log "exported models: $(printf '%s ' "${onnx_files[@]##*/}")"

# The host pip's setting for KEY (environment first, then pip's config files), if any.
host_pip_setting() {
    local env_name="$1" config_key="$2" value=""
    value="${!env_name:-}"
    if [ -z "$value" ]; then
        local py
        for py in python3 python; do
            if command -v "$py" >/dev/null 2>&1; then
                value="$("$py" -m pip config get "$config_key" 2>/dev/null || true)"
                break
            fi
        done
    fi
    # Keep only indexes the build can reach over the network.
    local kept=() item
    for item in $value; do
        case "$item" in
            file:*|/*) log "pip setting $config_key: leaving out local index $item" ;;
            *) kept+=("$item") ;;
        esac
    done
    printf '%s' "${kept[*]:-}"
}

BUILD_ARGS=()
for pair in PIP_INDEX_URL:global.index-url PIP_EXTRA_INDEX_URL:global.extra-index-url \
            PIP_TRUSTED_HOST:global.trusted-host; do
    env_name="${pair%%:*}"
    value="$(host_pip_setting "$env_name" "${pair#*:}")"
    if [ -n "$value" ]; then
        log "pip in the build: $env_name=$value"
        BUILD_ARGS+=(--build-arg "$env_name=$value")
    fi
done
[ ${#BUILD_ARGS[@]} -gt 0 ] || log "pip in the build: default index"

log "docker build --network host -t $TAG $REPO_ROOT"
start=$(date +%s)
docker build --network host -t "$TAG" "${BUILD_ARGS[@]}" "${EXTRA_ARGS[@]}" "$REPO_ROOT"
size="$(docker image inspect -f '{{.Size}}' "$TAG" | awk '{printf "%.0f MB", $1 / 1e6}')"
log "built $TAG ($size) in $(( $(date +%s) - start ))s"
