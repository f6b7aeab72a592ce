"""Benchmarks of ``sparseinit.sparse`` against a dense and a naive baseline.

Measures, in one run on the machine at hand:

* warm time of a jitted ``sparseinit.sparse(s)`` call, of ``jax.nn.initializers.lecun_uniform()``
  (the dense baseline) and of a per-neuron ``jax.random.permutation`` + ``vmap`` mask (the naive
  baseline), interleaved within each repeat;
* the first call (trace + compile + run) of the sparse and dense initializers, each in a fresh
  process;
* the memory each compiled program needs, from XLA's own accounting;
* the cold start of a 784-256-256-10 ``flax.nnx`` MLP built eagerly, sparse against dense, each
  in a fresh process;

then writes a markdown report with the machine, the versions, the tables and the targets of the
project, each marked met or not met from the numbers measured.

This file is the command line; ``measure.py`` holds what is timed and how, ``render.py`` the
report and its targets.

Usage::

    python benchmarks/run.py                      # full run, writes benchmarks/RESULTS.md
    python benchmarks/run.py --quick              # one small shape, few repeats, prints only
    python benchmarks/run.py --shapes 1024x1024 3x3x256x256 --repeats 9 --out /tmp/r.md
"""

import argparse
import math
import sys
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):
    # Run as a script, Python put benchmarks/ on the path; the package needs the directory above.
    # It goes first, so that no other installed ``benchmarks`` shadows this one.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax

from benchmarks import measure, render

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "RESULTS.md"

FULL_SHAPES = ((784, 256), (1024, 1024), (4096, 4096), (3, 3, 256, 256))
QUICK_SHAPES = ((784, 256),)
SPARSITIES = (0.1, 0.3, 0.5, 0.7, 0.9, 0.99)


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
        help="one small shape, 3 repeats, 1 process per fresh-process figure; prints the report "
        "and writes it only with --out",
    )
    parser.add_argument("--out", type=Path, help=f"report path (default {DEFAULT_OUT})")
    parser.add_argument("--repeats", type=positive, help="warm repeats (default 7, quick 3)")
    parser.add_argument(
        "--processes",
        type=positive,
        help="fresh processes per first-call and cold-start figure (default 5, quick 1)",
    )
    parser.add_argument("--shapes", nargs="+", type=parse_shape, help="e.g. 784x256 3x3x256x256")
    parser.add_argument(
        "--sparsities", nargs="+", type=parse_sparsity, help="default 0.1 0.3 0.5 0.7 0.9 0.99"
    )
    parser.add_argument("--skip-naive", action="store_true", help="do not time the naive baseline")
    parser.add_argument("--skip-cold", action="store_true", help="do not time the cold start")
    parser.add_argument("--child-first-call", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    jax.config.update("jax_enable_compilation_cache", False)
    if args.child_first_call:
        kind, shape, sparsity = args.child_first_call
        measure.child_first_call(kind, parse_shape(shape), float(sparsity))
        return 0

    shapes = args.shapes or (QUICK_SHAPES if args.quick else FULL_SHAPES)
    sparsities = args.sparsities or SPARSITIES
    repeats = args.repeats or (3 if args.quick else 7)
    processes = args.processes or (1 if args.quick else 5)
    target_seconds = 0.02 if args.quick else 0.25
    out = args.out if args.out is not None else (None if args.quick else DEFAULT_OUT)

    # Taken before any work, so that the date and the load are those of the start of the run.
    header = render.machine()
    keys = measure.fresh_keys(seed=1)
    rows = [
        measure.measure_row(
            shape,
            sparsity,
            repeats=repeats,
            processes=processes,
            target_seconds=target_seconds,
            keys=keys,
            skip_naive=args.skip_naive,
            progress=progress,
        )
        for shape in shapes
        for sparsity in sparsities
    ]

    cold = None
    if not args.skip_cold:
        progress("cold start")
        cold = measure.cold_starts(processes)

    settings = {
        "mode": "quick (not reference figures)" if args.quick else "full",
        "warm repeats": str(repeats),
        "fresh processes per first-call / cold-start figure": str(processes),
        "first call measured": "in a fresh process per sample, after one unrelated jitted op",
        "command": " ".join(["python benchmarks/run.py", *(argv or sys.argv[1:])]),
    }
    text = render.report(header, rows, cold, settings)
    print(text)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
        progress(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
