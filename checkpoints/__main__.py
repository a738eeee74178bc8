"""Fetch and verify weight files: `python -m checkpoints {list,fetch,verify}`."""

from __future__ import annotations

import argparse
import sys

from checkpoints.store import ChecksumError, checkpoint_record, exported_records, fetch, load_manifest, verify


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m checkpoints", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="describe every manifest entry")
    fetch_cmd = sub.add_parser("fetch", help="download and verify checkpoints (idempotent)")
    fetch_cmd.add_argument("names", nargs="*", help="default: all")
    verify_cmd = sub.add_parser("verify", help="check files against the manifest")
    verify_cmd.add_argument("--exported", action="store_true", help="verify exported ONNX files only")
    args = parser.parse_args(argv)

    manifest = load_manifest()
    if args.command == "list":
        for name, entry in manifest["checkpoints"].items():
            print(f"{name}: config={entry['config']} size={entry['size']:,} sha256={entry['sha256']}")
            print(f"    {entry['description']}")
        for model, entry in manifest["exported"].items():
            for part, f in entry["files"].items():
                print(f"{model} {part}: {f['file']} size={f['size']:,} sha256={f['sha256']}")
        return 0
    try:
        if args.command == "fetch":
            for name in args.names or list(manifest["checkpoints"]):
                print(f"{name}: {fetch(name)} (sha256 verified)")
            return 0
        records = [] if args.exported else [checkpoint_record(n, manifest) for n in manifest["checkpoints"]]
        for model in manifest["exported"]:
            records += exported_records(model, manifest).values()
        if args.exported and not records:
            raise ChecksumError("no exported ONNX files recorded: run python -m inference.export")
        for record in records:
            print(f"ok {verify(record)}")
    except (ChecksumError, KeyError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
