"""Fill OpenVINO's compiled-model cache for every exported model: `python -m inference.warmup`.

The image runs it when it is built, so that a fresh container imports compiled
models instead of compiling them (about a second per model) on every case. Each
precision OpenVINO offers is compiled where the model was exported for it: int8
reads an encoder graph of its own, which needs its own cache entry.
"""

from __future__ import annotations

import argparse
import sys
import time

from checkpoints.manifest import ChecksumError, exported_models
from inference.registry import BACKENDS, OPENVINO_CACHE_DIR, check_loadable, create_backend


def main(argv: list[str] | None = None) -> int:
    """Compile each exported model at each precision once with the cache on; print the seconds it took."""
    argparse.ArgumentParser(prog="python -m inference.warmup", description=__doc__).parse_args(argv)
    models = exported_models()
    if not models:
        print("no exported models: run bash scripts/setup.sh", file=sys.stderr)
        return 1
    for model in models:
        for precision in BACKENDS["openvino"].precisions:
            try:
                check_loadable(model, "openvino", precision)
            except ChecksumError as missing:
                print(f"{model} {precision}: skipped ({missing})")
                continue
            start = time.perf_counter()
            create_backend(model, "openvino", threads=1, precision=precision)
            print(f"{model} {precision}: compiled into {OPENVINO_CACHE_DIR} in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
