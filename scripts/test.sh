#!/usr/bin/env bash
# Set-up, then the whole test suite (Docker tests skip with a reason when no daemon
# or image is available; build the image with docker/build_image.sh).
#
# Usage: bash scripts/test.sh [pytest options]
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
"${VENV:-.venv}/bin/python" -m pytest tests -rs "$@"
