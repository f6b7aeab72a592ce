"""Benchmarks of ``sparseinit.sparse`` against dense and naive baselines, and condensed kernels.

Measures, in one run on the machine at hand (each part can be left out or run alone):

* warm: a jitted ``sparseinit.sparse(s)`` call against ``lecun_uniform`` (dense), a
  per-neuron ``jax.random.permutation`` (naive) and one sort per neuron, interleaved; the
  same under ``jit(vmap)`` over 8 keys; the memory of each compiled program;
* first-call: the first ``init(key, shape)`` of a fresh process, sparse, dense and one sort;
* large-fanin: the same at fan-ins of 150,528 and 1,000,000, with the peak resident memory;
* condensed: forward, backward and a streaming TD(λ) step on a condensed kernel against a
  dense and a masked one, and the bytes of each with Adam's state;
* cold: a 784-256-256-10 ``flax.nnx`` MLP built eagerly in a fresh process, sparse or dense;

then writes a Markdown report with the machine, the versions and the tables.

This file is the command line; ``measure.py`` holds the candidates and the warm timing,
``fresh.py`` what runs in fresh processes, ``condensed.py`` the condensed kernels and
``render.py`` the report.

Usage::

    python benchmarks/run.py                      # full run, writes benchmarks/RESULTS.md
    python benchmarks/run.py --quick              # small sizes, few repeats, prints only
    python benchmarks/run.py --only condensed --out /tmp/condensed.md
"""

import argparse
import math
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

if __package__ in (None, ""):
    # Run as a script, Python put benchmarks/ on the path; the package needs the directory above.
    # It goes first, so that no other installed ``benchmarks`` shadows this one.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax

from benchmarks import condensed, fresh, measure, render

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "RESULTS.md"

PARTS = ("warm", "first-call", "large-fanin", "condensed", "cold")
FULL_SHAPES = ((784, 256), (1024, 1024), (4096, 4096), (3, 3, 256, 256))
SPARSITIES = (0.1, 0.3, 0.5, 0.7, 0.9, 0.99)
# --quick: small sizes, for checking that the harness works, not for figures.
QUICK_SHAPES = ((784, 256),)
QUICK_LARGE_FANIN_SHAPES = ((65536, 4),)
QUICK_CONDENSED_SHAPES = ((1024, 128),)
QUICK_BATCHES = (1, 32)

T = TypeVar("T")


# ---- arguments ---------------------------------------------------------------------------
def parse_shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(d) for d in text.lower().split("x"))
    except ValueError:
        shape = ()
    if len(shape) < 2 or any(d <= 0 for d in shape):
        raise argparse.ArgumentTypeError(
            f"shape must be at least two positive sizes joined by 'x' (e.g. 784x256), got {text!r}"
        )
    return shape


def parse_dense_shape(text: str) -> tuple[int, int]:
    shape = parse_shape(text)
    if len(shape) != 2:
        raise argparse.ArgumentTypeError(f"a Dense kernel's shape is (in, out), got {text!r}")
    return shape


def parse_sparsity(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"sparsity must be in [0, 1], got {text!r}")
    return value


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small sizes, 3 repeats, 1 process per fresh-process figure; prints the report and "
        "writes it only with --out",
    )
    parser.add_argument("--out", type=Path, help=f"report path (default {DEFAULT_OUT})")
    parser.add_argument("--only", nargs="+", choices=PARTS, help="run these parts only")
    for part in PARTS:
        parser.add_argument(f"--skip-{part}", action="store_true", help=f"leave out {part}")
    parser.add_argument("--skip-naive", action="store_true", help="do not time the naive baseline")
    parser.add_argument("--repeats", type=positive, help="warm repeats (default 7, quick 3)")
    parser.add_argument(
        "--first-call-processes",
        "--processes",
        type=positive,
        help="fresh processes per first-call and cold-start figure (default 5, quick 1)",
    )
    parser.add_argument(
        "--large-fanin-processes",
        type=positive,
        help="fresh processes per large fan-in figure (default 3, quick 1)",
    )
    parser.add_argument("--shapes", nargs="+", type=parse_shape, help="e.g. 784x256 3x3x256x256")
    parser.add_argument(
        "--sparsities",
        nargs="+",
        type=parse_sparsity,
        help="default 0.1 0.3 0.5 0.7 0.9 0.99; each part keeps those of its own it is given",
    )
    parser.add_argument(
        "--large-fanin-shapes", nargs="+", type=parse_shape, help="default 150528x64 1000000x4"
    )
    parser.add_argument(
        "--condensed-shapes",
        nargs="+",
        type=parse_dense_shape,
        help="default 1024x128 1024x1024 4096x4096",
    )
    parser.add_argument("--batches", nargs="+", type=positive, help="default 1 32 256")
    parser.add_argument("--child-first-call", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    jax.config.update("jax_enable_compilation_cache", False)
    if args.child_first_call:
        kind, shape, sparsity = args.child_first_call
        fresh.child_first_call(kind, parse_shape(shape), float(sparsity))
        return 0

    quick = args.quick
    parts = [p for p in (args.only or PARTS) if not getattr(args, "skip_" + p.replace("-", "_"))]
    sparsities = tuple(args.sparsities or SPARSITIES)
    detailed = tuple(s for s in sparsities if s in measure.DETAILED_SPARSITIES)
    shapes = args.shapes or (QUICK_SHAPES if quick else FULL_SHAPES)
    repeats = args.repeats or (3 if quick else 7)
    processes = args.first_call_processes or (1 if quick else 5)
    large_processes = args.large_fanin_processes or (1 if quick else 3)
    target_seconds = 0.02 if quick else 0.25
    out = args.out if args.out is not None else (None if quick else DEFAULT_OUT)

    # Taken before any work, so that the date and the load are those of the start of the run.
    header = render.machine()
    keys = measure.fresh_keys(seed=1)
    durations: dict[str, float] = {}

    def timed(part: str, work: Callable[[], T]) -> T | None:
        if part not in parts:
            return None
        start = time.perf_counter()
        result = work()
        durations[part] = time.perf_counter() - start
        return result

    def warm_rows() -> list[measure.Row]:
        return [
            measure.measure_row(
                shape,
                sparsity,
                repeats=repeats,
                target_seconds=target_seconds,
                keys=keys,
                skip_naive=args.skip_naive,
                progress=progress,
            )
            for shape in shapes
            for sparsity in sparsities
        ]

    def first_calls(
        shapes: Sequence[tuple[int, ...]], kinds: Sequence[str], processes: int
    ) -> list[fresh.FirstCalls]:
        candidates = [("dense", None), *((k, s) for s in detailed for k in kinds)]
        return [fresh.first_calls(shape, candidates, processes, progress) for shape in shapes]

    def condensed_results() -> condensed.Results | None:
        if not condensed.available():
            progress("condensed: this sparseinit has no Condensed; not measured")
            return None
        return condensed.measure(
            tuple(args.condensed_shapes or (QUICK_CONDENSED_SHAPES if quick else condensed.SHAPES)),
            tuple(s for s in sparsities if s in condensed.SPARSITIES),
            tuple(args.batches or (QUICK_BATCHES if quick else condensed.BATCHES)),
            repeats=repeats,
            target_seconds=target_seconds / 2.5,
            keys=keys,
            progress=progress,
        )

    def cold_starts() -> dict[str, dict[str, list[float]]]:
        progress("cold start")
        return fresh.cold_starts(processes)

    large_shapes = args.large_fanin_shapes or (
        QUICK_LARGE_FANIN_SHAPES if quick else fresh.LARGE_FANIN_SHAPES
    )
    report = render.Report(
        rows=timed("warm", warm_rows) or [],
        first=timed("first-call", lambda: first_calls(shapes, ("sparse", "sort"), processes)),
        large=timed("large-fanin", lambda: first_calls(large_shapes, ("sparse",), large_processes)),
        condensed=timed("condensed", condensed_results),
        cold=timed("cold", cold_starts),
    )
    total = sum(durations.values())
    settings = {
        "run": (
            f"{'quick (not reference figures)' if quick else 'full'}; warm repeats: {repeats}; "
            f"processes per first call and cold start: {processes}, per large fan-in: "
            f"{large_processes}"
        ),
        "duration": f"{total / 60:.1f} min ("
        + ", ".join(f"{part} {seconds / 60:.1f}" for part, seconds in durations.items())
        + ")",
        "command": " ".join(["python benchmarks/run.py", *(argv or sys.argv[1:])]),
    }
    text = render.report(header, settings, report)
    print(text)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
        progress(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
