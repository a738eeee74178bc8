"""Raw single-call latency of one backend: `python -m benchmarks.latency --backend openvino [--precision f32]`.

Prints one JSON line: seconds to load the models, the median encoder milliseconds per
256x256 image, the median decoder milliseconds of one box on a new image (the decoder's
image half and box half), and per box on an image already decoded (box half only) at
several batch sizes (OpenVINO's box half takes one box per call and loops over a batch).
Run it as a fresh process per backend, with the threads the cases get.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from inference.profiling import median_ms
from inference.registry import BACKENDS, PRECISIONS, create_backend

DECODE_BATCHES = (1, 4, 16)


def main(argv: list[str] | None = None) -> int:
    """Measure and print the JSON line."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.latency", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=list(BACKENDS), required=True)
    parser.add_argument("--precision", default="f32", choices=list(PRECISIONS))
    parser.add_argument("--model", default="litemedsam")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    backend = create_backend(args.model, args.backend, args.threads, precision=args.precision)
    load = time.perf_counter() - start
    rng = np.random.default_rng(0)
    image = rng.random((1, 3, 256, 256), dtype=np.float32)
    embedding = backend.encode(image)
    box = np.array([[40.0, 60.0, 170.0, 200.0]], dtype=np.float32)
    result = {
        "backend": args.backend, "precision": args.precision, "threads": args.threads, "load_s": load,
        "encoder_ms": median_ms(lambda: backend.encode(image), args.repeats),
        # A fresh copy is a new image to the backend, so its image half runs each time.
        "decoder_new_image_ms": median_ms(lambda: backend.decode(embedding.copy(), box), args.repeats),
        "decoder_ms_per_box": {
            str(batch): median_ms(lambda: backend.decode(embedding, np.repeat(box, batch, axis=0)), args.repeats) / batch
            for batch in DECODE_BATCHES
        },
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
