"""Command line: ``python -m demo --out DIR [--cache DIR]`` builds the demo cases."""

from __future__ import annotations

import argparse
from pathlib import Path

from demo.build import build_demo
from demo.wheels import default_cache_dir
from inference.cases import load_case


def main(argv: list[str] | None = None) -> None:
    """Build the demo cases and print one line per case written."""
    parser = argparse.ArgumentParser(prog="python -m demo", description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument(
        "--cache", type=Path, default=None,
        help=f"wheel cache folder (default: {default_cache_dir()})",
    )
    args = parser.parse_args(argv)
    for path in build_demo(args.out, args.cache):
        # Reading back through the pipeline's own loader checks the contract too.
        case = load_case(path)
        gt_bytes = (args.out / "gts" / case.name).stat().st_size
        print(
            f"{case.name}: imgs {case.image.shape} {case.image.dtype}, "
            f"{len(case.boxes)} objects, input {path.stat().st_size} bytes, gts {gt_bytes} bytes"
        )


if __name__ == "__main__":
    main()
