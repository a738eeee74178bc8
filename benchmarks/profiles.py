"""Speed and accuracy of every profile in one table, to choose from: `python -m benchmarks.profiles`.

A profile is a model, a precision (OpenVINO) and a 3D slice step of our path
(`--slice-step`: the model on every Nth slice, the masks between interpolated). For each profile: its
weighted geometric-mean speed-up over the typical mix (demo.typical_cases, weighted as
benchmarks.mix says) against the organizers' own script (benchmarks.organizers), its
least speed-up on a one-object 3D case, and its mean DSC on each case set with ground
truth: the typical mix, the demo cases, and any --cases NAME=DIR (e.g. the held-out
split of `python -m training.images`). Every timed run is a fresh process on one
pinned core; on each case the organizers' script and every profile take turns
(`--rounds R`: R turns, the median counts), so a machine that slows down during
the run does not favour the commands timed first.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from benchmarks.cores import pin_to_cores
from benchmarks.docs import DOCS, publish
from benchmarks.mix import case_weights, is_one_object_3d, weighted_geomean
from benchmarks.organizers import fetch_script, script_command
from casefiles import discover_cases
from checkpoints.manifest import checkpoint_for
from demo.typical_cases import write_typical
from demo.wheels import default_cache_dir
from evaluation.metrics.folder import evaluate_folder
from evaluation.runtime.harness import run_local
from inference.registry import BACKENDS
from inference.settings import RunSettings


@dataclass(frozen=True)
class Profile:
    """One way to run our path: a model, a precision and a 3D slice step."""

    model: str
    precision: str
    slice_step: int = 1

    @classmethod
    def parse(cls, text: str) -> Profile:
        """MODEL:PRECISION or MODEL:PRECISION:STEP."""
        parts = text.split(":")
        if len(parts) not in (2, 3) or (len(parts) == 3 and not (parts[2].isdigit() and int(parts[2]) >= 1)):
            raise ValueError(f"a profile is MODEL:PRECISION[:STEP] with a whole STEP >= 1, not {text}")
        if parts[1] not in BACKENDS["openvino"].precisions:
            raise ValueError(f"unknown precision {parts[1]!r} in {text}")
        return cls(parts[0], parts[1], int(parts[2]) if len(parts) == 3 else 1)

    def options(self) -> list[str]:
        """The command-line options of `python -m inference` that select this profile."""
        return ["--model", self.model, "--precision", self.precision, "--slice-step", str(self.slice_step)]

    @property
    def name(self) -> str:
        """The options as a user would type them."""
        return " ".join(self.options())

    @property
    def spec(self) -> str:
        """MODEL:PRECISION:STEP, as --profiles takes it."""
        return f"{self.model}:{self.precision}:{self.slice_step}"


ORGANIZERS = "organizers"
# The profile python -m inference runs by default, and the targets against the organizers' script.
DEFAULT_PROFILE = Profile(RunSettings().model, RunSettings().precision, RunSettings().slice_step)
TARGET_DEFAULT_GEOMEAN = 5.0
TARGET_ONE_OBJECT_3D = 3.5
TARGET_FAST_GEOMEAN = 8.0
FAST_PROFILE_DSC_POINTS = 1.0
PROFILES = (
    Profile("auto", "f32"),
    Profile("auto", "bf16"),
    Profile("auto", "f32", 3),
    Profile("auto", "bf16", 3),
    Profile("litemedsam", "f32"),
    Profile("litemedsam", "bf16"),
    Profile("litemedsam", "int8"),
    Profile("swiftmedsam-v2", "f32"),
    Profile("swiftmedsam-v2", "bf16"),
    Profile("swiftmedsam-v2", "int8"),
    Profile("swiftmedsam-v2", "bf16", 3),
    Profile("swiftmedsam-v2", "int8", 3),
)


def time_in_turns(cases: list[Path], commands: dict[str, str], rounds: int) -> dict[str, dict[str, float]]:
    """Per command (name -> template with {inputs} and {outputs}), each case's median seconds over `rounds`, each run
    a fresh process. The commands take turns on each case, so a machine that slows down during the run (other
    tenants, heat) slows every command alike instead of the ones timed last."""
    seconds: dict[str, dict[str, list[float]]] = {name: {case.name: [] for case in cases} for name in commands}
    for _ in range(rounds):
        for case in cases:
            for name, template in commands.items():
                run = run_local(case, template)
                if not run.timing.ok:
                    raise RuntimeError(f"{case.name}: {name} failed ({run.message})")
                seconds[name][case.name].append(run.timing.seconds)
    return {name: {case: statistics.median(times) for case, times in per_case.items()}
            for name, per_case in seconds.items()}


def segment(inputs: Path, out: Path, options: list[str]) -> None:
    """`python -m inference OPTIONS` over `inputs` into `out`."""
    subprocess.run([sys.executable, "-m", "inference", "-i", str(inputs), "-o", str(out), "--no-progress", *options],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def mean_dsc(inputs: Path, gts: Path, out: Path, options: list[str]) -> float:
    """Segment a case set with `python -m inference OPTIONS` and score it: the mean DSC in percent."""
    segment(inputs, out, options)
    scores = evaluate_folder(gts, out)
    return 100 * sum(score.dsc for score in scores) / len(scores)


def fastest_close_to(rows: list[dict], reference: dict, points: float = FAST_PROFILE_DSC_POINTS) -> dict:
    """The row with the highest typical-mix speed-up whose DSC on no set is more than `points` below `reference`'s."""
    close = [r for r in rows if all(r["dsc"][name] >= dsc - points for name, dsc in reference["dsc"].items())]
    return max(close, key=lambda r: r["geomean"])


def targets(rows: list[dict]) -> list[str]:
    """The speed targets against the organizers' script, as Markdown rows; the default profile's row is the
    one whose options are the CLI's defaults (absent: no targets)."""
    default = next((r for r in rows if r["profile"] == DEFAULT_PROFILE.name), None)
    if default is None:
        return []
    fast = fastest_close_to(rows, default)
    checks = [(f"default profile, typical mix >= {TARGET_DEFAULT_GEOMEAN}x", f"{default['geomean']:.2f}x",
               default["geomean"] >= TARGET_DEFAULT_GEOMEAN),
              (f"default profile, every one-object 3D case >= {TARGET_ONE_OBJECT_3D}x",
               f"{default['one_object_3d']:.2f}x", default["one_object_3d"] >= TARGET_ONE_OBJECT_3D),
              (f"fastest profile with DSC within {FAST_PROFILE_DSC_POINTS:g} point of the default's on every set "
               f">= {TARGET_FAST_GEOMEAN}x", f"{fast['geomean']:.2f}x (`{fast['profile']}`)",
               fast["geomean"] >= TARGET_FAST_GEOMEAN)]
    return ["", "| target | measured | met |", "| --- | --- | --- |",
            *(f"| {name} | {value} | {'yes' if met else 'no'} |" for name, value, met in checks)]


def report(rows: list[dict], sets: list[str]) -> str:
    """The Markdown table, one row per profile, and the targets."""
    lines = ["| profile | speed-up against the organizers' script, typical mix (weighted geometric mean) | "
             "least one-object 3D speed-up | " + " | ".join(f"DSC {name}" for name in sets) + " |",
             "| --- " * (3 + len(sets)) + "|"]
    for r in rows:
        lines.append(f"| `{r['profile']}` | {r['geomean']:.2f}x | {r['one_object_3d']:.2f}x | "
                     + " | ".join(f"{r['dsc'][name]:.2f}" for name in sets) + " |")
    return "\n".join(lines + targets(rows)) + "\n"


def parse_sets(values: list[str]) -> dict[str, Path]:
    """NAME=DIR pairs, each DIR holding inputs/ and gts/."""
    sets = {}
    for value in values:
        name, _, folder = value.partition("=")
        if not name or not folder:
            raise SystemExit(f"error: --cases takes NAME=DIR, got {value!r}")
        sets[name] = Path(folder)
    return sets


def main(argv: list[str] | None = None) -> int:
    """Run every profile, print the table and save it."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profiles", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", nargs="*", default=["demo=demo_data"], metavar="NAME=DIR",
                        help="case sets to score besides the typical mix (default: demo=demo_data)")
    parser.add_argument("--organizers-repo", type=Path,
                        help="a local clone of the organizers' repository to take their script from instead of GitHub")
    parser.add_argument("--cache", type=Path, default=default_cache_dir(),
                        help="where the organizers' script and the demo wheels are kept (default: %(default)s)")
    parser.add_argument("--profiles", nargs="+", metavar="MODEL:PRECISION[:STEP]",
                        help="only these profiles, STEP the 3D slice step (default 1); default: "
                             + ", ".join(profile.spec for profile in PROFILES))
    parser.add_argument("--rounds", type=int, default=1,
                        help="times each command runs on each case; the median counts (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=Path("runs/profiles"))
    parser.add_argument("--docs", type=Path, default=DOCS, help="the Markdown file whose profiles section is replaced")
    parser.add_argument("--no-docs", action="store_true", help="leave the docs as they are")
    args = parser.parse_args(argv)
    try:
        profiles = [Profile.parse(text) for text in args.profiles] if args.profiles else list(PROFILES)
    except ValueError as err:
        parser.error(str(err))
    if args.rounds < 1:
        parser.error("--rounds must be >= 1")
    sets = {"typical": args.out / "typical", **parse_sets(args.cases)}
    classes = write_typical(sets["typical"], args.cache)
    cases = discover_cases(sets["typical"] / "inputs")
    weights = case_weights(classes, [case.name for case in cases])
    python = sys.executable
    script = fetch_script(args.cache, args.organizers_repo)
    print(f"pinned to core {pin_to_cores(1)}", file=sys.stderr)
    rows = []
    with tempfile.TemporaryDirectory(dir=args.out) as scratch:
        organizers = script_command(script, python, checkpoint_for("litemedsam").path, Path(scratch) / "overlays")
        options = {profile.spec: [*profile.options(), "--threads", "1"] for profile in profiles}
        ours = {spec: f"{python} -m inference -i {{inputs}} -o {{outputs}} --no-progress {' '.join(words)}"
                for spec, words in options.items()}
        seconds = time_in_turns(cases, {ORGANIZERS: organizers, **ours}, args.rounds)
        theirs = seconds[ORGANIZERS]
        for profile in profiles:
            ratios = {name: theirs[name] / mine for name, mine in seconds[profile.spec].items()}
            scratch_dir = Path(scratch) / profile.spec.replace(":", "-")
            dsc = {name: mean_dsc(where / "inputs", where / "gts", scratch_dir / name, options[profile.spec])
                   for name, where in sets.items()}
            one_object = [r for name, r in ratios.items() if is_one_object_3d(name, classes[name])]
            rows.append({"profile": profile.name, "ratios": ratios, "dsc": dsc,
                         "geomean": weighted_geomean([ratios[c.name] for c in cases], weights),
                         "one_object_3d": min(one_object)})
            print(f"{rows[-1]['profile']}: {rows[-1]['geomean']:.2f}x", file=sys.stderr)
    text = report(rows, list(sets))
    section = ("profiles", "Profiles: speed against the organizers' script and DSC")
    publish(args.out, "profiles", text, {"organizers_s": theirs, "rows": rows}, "benchmarks.profiles", argv,
            None if args.no_docs else section, args.docs)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
