"""Your own data in and out: `python -m convert {to-npz,from-npz,segment,dataset} ...`."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from convert.case import ConvertOptions, prepare_case
from convert.errors import ConvertError
from convert.geometry import Geometry
from convert.intensity import WINDOW_PRESETS, Window, parse_window
from convert.objects import DEFAULT_MIN_SIZE, ObjectMode
from convert.readers import read_scan
from convert.restore import find_sidecar, restore_file
from convert.writers import IMAGE_OUTPUTS, check_image_output, write_case, write_image
from inference.config import MODEL_CONFIGS
from inference.propagation import Propagation
from inference.registry import BACKENDS, PRECISIONS
from inference.routing import AUTO

LOG = logging.getLogger("convert")


def window(text: str) -> Window:
    """argparse type for --window."""
    try:
        return parse_window(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def non_negative(text: str) -> int:
    """argparse type: an integer >= 0."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def add_case_options(parser: argparse.ArgumentParser, single: bool) -> None:
    """The options of how a scan becomes a case (`single`: one scan, so --name and --series too)."""
    parser.add_argument("--modality", help="CT, MR, PET, US, ... (default: the DICOM Modality tag); CT is windowed")
    parser.add_argument("--window", type=window, default=WINDOW_PRESETS["soft-tissue"], metavar="LEVEL,WIDTH",
                        help=f"CT window in HU or a preset: {', '.join(WINDOW_PRESETS)} (default: 40,400)")
    parser.add_argument("--objects", choices=[m.value for m in ObjectMode], default=ObjectMode.LABELS.value,
                        help="one object per label value (labels) or per connected component of each (instances)")
    parser.add_argument("--min-size", type=non_negative, metavar="VOXELS",
                        help=f"instances: drop smaller components (default {DEFAULT_MIN_SIZE[3]} in 3D, "
                             f"{DEFAULT_MIN_SIZE[2]} in 2D)")
    parser.add_argument("--box-jitter", type=non_negative, default=0, metavar="PIXELS",
                        help="widen each x/y box side by a random 0..PIXELS of the 256-pixel model scale")
    parser.add_argument("--seed", type=int, help="random seed of --box-jitter")
    parser.add_argument("--crop-margin", type=non_negative, metavar="VOXELS",
                        help="crop the case to the boxes grown by this margin (undone on the way back)")
    if single:
        parser.add_argument("--name", help="case name, e.g. 3DBox_MR_0001 (default: <kind>Box_<modality>_<file name>)")
        parser.add_argument("--series", metavar="UID", help="DICOM folder: the series to read (default: most slices)")


def add_inference_options(parser: argparse.ArgumentParser) -> None:
    """The options of `python -m inference` that `segment` passes on (their defaults are the inference CLI's)."""
    parser.add_argument("--model", choices=[AUTO, *sorted(MODEL_CONFIGS)], help="as python -m inference (default: auto)")
    parser.add_argument("--backend", choices=list(BACKENDS), help="as python -m inference (default: openvino)")
    parser.add_argument("--precision", choices=list(PRECISIONS), help="as python -m inference (default: f32)")
    parser.add_argument("--checkpoint", type=Path, help="as python -m inference (torch backend)")
    parser.add_argument("--propagation", choices=[p.value for p in Propagation],
                        help="as python -m inference (default: clipped)")
    parser.add_argument("--slice-step", type=int, metavar="N", help="as python -m inference (default: 1)")
    parser.add_argument("--threads", type=int, help="as python -m inference (default: the cores allowed)")


def add_prompts(parser: argparse.ArgumentParser, required: bool) -> None:
    """--labels or --boxes, one of them."""
    group = parser.add_mutually_exclusive_group(required=required)
    group.add_argument("--labels", type=Path, help="label image on the same grid: objects, boxes and gts")
    group.add_argument("--boxes", type=Path, metavar="BOXES.json", help="boxes in voxel indices or mm (docs/convert.md)")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m convert", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True)

    to_npz = commands.add_parser("to-npz", help="a scan to a challenge case in DIR/imgs, DIR/gts and DIR/<name>.json")
    to_npz.add_argument("source", type=Path, help="image file or DICOM series folder")
    add_prompts(to_npz, required=True)
    add_case_options(to_npz, single=True)
    to_npz.add_argument("--out", type=Path, required=True, metavar="DIR", help="the case folder")

    from_npz = commands.add_parser("from-npz", help="a segs npz back on its source's grid")
    from_npz.add_argument("segs", type=Path, help="segmentation .npz (key segs)")
    from_npz.add_argument("--like", type=Path, required=True, metavar="SOURCE", help="the case's source scan")
    from_npz.add_argument("--series", metavar="UID", help="--like is a DICOM folder: the series (default: most slices)")
    from_npz.add_argument("--sidecar", type=Path, metavar="JSON",
                          help="the case's sidecar (default: <name>.json beside SEGS or in its parent folder)")
    from_npz.add_argument("--source-labels", action="store_true", help="write the source label values, not 1..N")
    from_npz.add_argument("--out", type=Path, required=True, help=f"label image: {', '.join(IMAGE_OUTPUTS)}")

    segment = commands.add_parser("segment", help="scan and boxes or labels to a mask on the scan's grid")
    segment.add_argument("source", type=Path, help="image file or DICOM series folder")
    add_prompts(segment, required=True)
    add_case_options(segment, single=True)
    segment.add_argument("--source-labels", action="store_true", help="write the source label values, not 1..N")
    segment.add_argument("--out", type=Path, required=True, help=f"label image: {', '.join(IMAGE_OUTPUTS)}")
    add_inference_options(segment)

    dataset = commands.add_parser("dataset", help="a folder of scans to imgs/, gts/ and sources.csv")
    dataset.add_argument("--images", type=Path, required=True, metavar="DIR", help="scans (a DICOM series per sub-folder)")
    dataset.add_argument("--labels", type=Path, metavar="DIR", help="label images named as the scans")
    dataset.add_argument("--boxes", type=Path, metavar="DIR", help="box files named as the scans (BOXES.json)")
    add_case_options(dataset, single=False)
    dataset.add_argument("--out", type=Path, required=True, metavar="DIR", help="the cases folder")
    dataset.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def options_from(args: argparse.Namespace) -> ConvertOptions:
    """The conversion options the arguments describe."""
    name = getattr(args, "name", None)
    return ConvertOptions(
        modality=args.modality, name=None if name is None else name.removesuffix(".npz"), window=args.window,
        objects=ObjectMode(args.objects), min_size=args.min_size, box_jitter=args.box_jitter, seed=args.seed,
        series=getattr(args, "series", None), crop_margin=args.crop_margin,
    )


def inference_options(args: argparse.Namespace) -> list[str]:
    """The inference CLI's options given to `segment`, as its argv."""
    given = []
    for option in ("model", "backend", "precision", "checkpoint", "propagation", "slice_step", "threads"):
        value = getattr(args, option)
        if value is not None:
            given += [f"--{option.replace('_', '-')}", str(value)]
    return given


def run(args: argparse.Namespace) -> int:
    """Carry out the subcommand; the exit status."""
    if args.command == "to-npz":
        case = prepare_case(args.source, args.labels, args.boxes, options_from(args))
        paths = write_case(case, args.out)
        LOG.info("%s: %s, %d object(s) -> %s", case.name, "x".join(map(str, case.imgs.shape)), len(case.boxes),
                 ", ".join(map(str, paths.values())))
    elif args.command == "from-npz":
        check_image_output(args.out)
        like = read_scan(args.like, args.series)
        image = restore_file(args.segs, Geometry.of(like.image), args.like, find_sidecar(args.segs, args.sidecar),
                             args.source_labels)
        LOG.info("wrote %s", write_image(image, args.out))
    elif args.command == "segment":
        from convert.segment import segment_scan

        written = segment_scan(args.source, args.labels, args.boxes, args.out, options_from(args),
                               inference_options(args), args.source_labels)
        LOG.info("wrote %s", written)
    else:
        from convert.dataset import convert_dataset

        if args.labels is None and args.boxes is None:
            raise ConvertError(args.images, "give --labels DIR or --boxes DIR")
        show = not args.no_progress and sys.stderr.isatty()
        return convert_dataset(args.images, args.labels, args.boxes, options_from(args), args.out, show)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run a subcommand. Exit status: 0 done, 1 a file could not be converted (named on stderr), 2 bad usage."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s", stream=sys.stderr)
    LOG.setLevel(logging.DEBUG if args.verbose else logging.INFO)
    try:
        return run(args)
    except ConvertError as err:
        LOG.error("error: %s", err)
        return 1


if __name__ == "__main__":
    sys.exit(main())
