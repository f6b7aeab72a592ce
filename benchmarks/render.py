"""The Markdown report of a benchmark run: ``benchmarks/RESULTS.md``.

One title, a short table of the machine, the versions and the run, then one section per part
of the run, each table at most seven columns wide. ``benchmarks/README.md`` says what each
figure is and how it is measured; the report only says what its columns hold.
``tests/test_benchmarks.py`` and the docs (``docs/hooks/benchmark_report.py``) read its
tables: change its format deliberately.
"""

import dataclasses
import datetime
import importlib.metadata
import math
import os
import platform
import statistics
import subprocess
from collections.abc import Sequence
from pathlib import Path

import jax

from benchmarks import condensed as condensed_
from benchmarks.fresh import FirstCalls
from benchmarks.measure import ONE_SORT_GENERATOR, SLOW_CALL_SECONDS, SWEEP_KEYS, Row, fmt_shape

HERE = Path(__file__).resolve().parent
MIB = 2**20


@dataclasses.dataclass
class Report:
    """Every figure of one run; a part left out of the run is None (or empty)."""

    rows: list[Row]
    first: list[FirstCalls] | None = None
    large: list[FirstCalls] | None = None
    condensed: condensed_.Results | None = None
    cold: dict[str, dict[str, list[float]]] | None = None


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def fmt_ms(ms: float | None) -> str:
    if ms is None:
        return "-"
    return f"{ms:.3g}" if ms < 1000 else f"{ms:,.0f}"


def fmt_x(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}x"


def fmt_mib(mib: float | None) -> str:
    return "-" if mib is None else f"{mib:.3g}" if mib < 1000 else f"{mib:,.0f}"


def fmt_range(ms: Sequence[float]) -> str:
    """Median and range of a fresh-process figure: ``391 (380-420)``."""
    if not ms:
        return "-"
    if len(ms) == 1:
        return fmt_ms(ms[0])
    return f"{fmt_ms(statistics.median(ms))} ({fmt_ms(min(ms))}-{fmt_ms(max(ms))})"


def table(
    header: Sequence[str], rows: Sequence[Sequence[str]], *, numbers: bool = True
) -> list[str]:
    """A Markdown table; with ``numbers``, every column but the first right-aligned."""
    align = "---:|" if numbers else "---|"
    lines = ["| " + " | ".join(header) + " |", "|---|" + align * (len(header) - 1)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


# ---- the machine and versions the run is on ----------------------------------------------
def machine() -> list[tuple[str, str]]:
    """The report's header: date, machine, load, backend and versions, as label and text."""
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass

    def version(name: str) -> str:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    try:
        load = "{:.2f}, {:.2f}, {:.2f}".format(*os.getloadavg())
    except OSError:
        load = "unknown"
    try:
        commit = subprocess.run(
            ["git", "-C", str(HERE), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    devices = ", ".join(sorted({d.device_kind for d in jax.devices()}))
    return [
        ("date", datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")),
        ("CPU", cpu),
        ("cores", str(os.cpu_count())),
        ("load average (1, 5, 15 min) at start", load),
        ("JAX backend", f"{jax.default_backend()} ({devices})"),
        ("python", platform.python_version()),
        ("jax", version("jax")),
        ("jaxlib", version("jaxlib")),
        ("numpy", version("numpy")),
        ("flax", version("flax")),
        ("torch (anchors only)", version("torch")),
        ("sparseinit", f"{version('sparseinit')} ({commit})"),
    ]


# ---- the report --------------------------------------------------------------------------
def report(header: list[tuple[str, str]], settings: dict[str, str], figures: Report) -> str:
    """The whole report: the header, then one section per part of the run."""
    lines = ["# sparseinit benchmarks", ""]
    lines += table(["", ""], [*header, *settings.items()], numbers=False)
    lines += _warm_section(figures.rows)
    lines += _sweeps_section(figures.rows)
    lines += _first_call_section(figures.first)
    lines += _memory_section(figures.rows)
    lines += _large_fanin_section(figures.large)
    lines += _condensed_section(figures.condensed)
    lines += _anchors_section(figures.rows)
    lines += _cold_start_section(figures.cold)
    return "\n".join(lines) + "\n"


def _warm_section(rows: list[Row]) -> list[str]:
    if not rows:
        return []
    body, notes = [], []
    for row in rows:
        naive = row.warm.get("naive")
        naive_ms = fmt_ms(row.warm_ms("naive"))
        if naive is not None and naive.slow:
            naive_ms += " *"
            notes.append(
                f"\\* {fmt_shape(row.shape)}, {row.sparsity}: median of {len(naive.repeats)} "
                f"single calls, as a call takes over {SLOW_CALL_SECONDS:g} s.  "
            )
        body.append(
            [
                fmt_shape(row.shape),
                str(row.sparsity),
                fmt_ms(row.warm_ms("dense")),
                fmt_ms(row.warm_ms("sparse")),
                fmt_x(ratio(row.warm_ms("sparse"), row.warm_ms("dense"))),
                naive_ms,
                fmt_x(ratio(row.warm_ms("naive"), row.warm_ms("sparse"))),
            ]
        )
    lines = ["", "## Warm calls", "", "Milliseconds a jitted call, float32.", ""]
    header = ["shape", "sparsity", "dense", "sparse", "sparse / dense", "naive", "naive / sparse"]
    lines += table(header, body)
    sorts = [row for row in rows if row.warm_ms("sort") is not None]
    if sorts:
        lines += [
            "",
            "### One sort per neuron",
            "",
            f"Words and values from {ONE_SORT_GENERATOR}.",
            "",
        ]
        body = [
            [
                fmt_shape(row.shape),
                str(row.sparsity),
                fmt_ms(row.warm_ms("sort")),
                fmt_x(ratio(row.warm_ms("sort"), row.warm_ms("dense"))),
            ]
            for row in sorts
        ]
        lines += table(["shape", "sparsity", "one sort", "one sort / dense"], body)
    return lines + (["", *notes] if notes else [])


def _sweeps_section(rows: list[Row]) -> list[str]:
    rows = [row for row in rows if row.warm_ms("traced8") is not None]
    if not rows:
        return []
    lines = [
        "",
        f"## Sweeps: `jit(vmap)` over {SWEEP_KEYS} keys",
        "",
        "Milliseconds a call; *concrete*: the sparsity a Python float, *traced*: an argument.",
        "",
    ]
    header = ["shape", "sparsity", "dense", "concrete", "traced", "traced / dense"]
    header.append("traced / concrete")
    body = [
        [
            fmt_shape(row.shape),
            str(row.sparsity),
            fmt_ms(row.warm_ms("dense8")),
            fmt_ms(row.warm_ms("sparse8")),
            fmt_ms(row.warm_ms("traced8")),
            fmt_x(ratio(row.warm_ms("traced8"), row.warm_ms("dense8"))),
            fmt_x(ratio(row.warm_ms("traced8"), row.warm_ms("sparse8"))),
        ]
        for row in rows
    ]
    return lines + table(header, body)


def _failures(calls: list[FirstCalls]) -> list[str]:
    notes = []
    for shape_calls in calls:
        for (kind, sparsity), why in shape_calls.failed.items():
            at = f"{fmt_shape(shape_calls.shape)}" + (f", {sparsity}" if sparsity else "")
            notes.append(f"{kind} at {at} failed: {why}  ")
    return ["", *notes] if notes else []


def _first_call_section(calls: list[FirstCalls] | None) -> list[str]:
    if not calls:
        return []
    lines = [
        "",
        "## First call",
        "",
        "Milliseconds of `init(key, shape)` in a fresh process: median (range) over processes.",
        "",
    ]
    header = ["shape", "sparsity", "dense", "sparse", "sparse / dense", "one sort"]
    header.append("one sort / dense")
    body = []
    for c in calls:
        dense = c.median_ms("dense")
        for kind, sparsity in c.samples:
            if kind != "sparse":
                continue
            body.append(
                [
                    fmt_shape(c.shape),
                    str(sparsity),
                    fmt_range(c.ms("dense")),
                    fmt_range(c.ms("sparse", sparsity)),
                    fmt_x(ratio(c.median_ms("sparse", sparsity), dense)),
                    fmt_range(c.ms("sort", sparsity)),
                    fmt_x(ratio(c.median_ms("sort", sparsity), dense)),
                ]
            )
    return lines + table(header, body) + _failures(calls)


def _memory_section(rows: list[Row]) -> list[str]:
    rows = [row for row in rows if row.memory]
    if not rows:
        return []
    lines = [
        "",
        "## Memory of the compiled programs",
        "",
        "XLA's argument + output + temp bytes over the output's bytes; *temp*: scratch alone.",
        "",
    ]
    header = ["shape", "sparsity", "output MiB", "dense", "sparse", "sparse temp", "naive"]
    body = []
    for row in rows:
        size = row.output_bytes()
        sparse = row.memory.get("sparse")
        body.append(
            [
                fmt_shape(row.shape),
                str(row.sparsity),
                fmt_mib(size / MIB),
                fmt_x(row.memory_ratio("dense")),
                fmt_x(row.memory_ratio("sparse")),
                fmt_x(sparse.temp / size if sparse else None),
                fmt_x(row.memory_ratio("naive")),
            ]
        )
    return lines + table(header, body)


def _large_fanin_section(calls: list[FirstCalls] | None) -> list[str]:
    if not calls:
        return []
    lines = [
        "",
        "## Large fan-ins",
        "",
        "First call of `init(key, shape)` in a fresh process, milliseconds: median (range).",
        "",
    ]
    times, peaks = [], []
    for c in calls:
        dense_ms, dense_mib = c.median_ms("dense"), c.peak_mib("dense")
        output = fmt_mib(4 * math.prod(c.shape) / MIB)
        for kind, sparsity in c.samples:
            if kind != "sparse":
                continue
            where = [fmt_shape(c.shape), str(sparsity)]
            times.append(
                [
                    *where,
                    fmt_range(c.ms("dense")),
                    fmt_range(c.ms("sparse", sparsity)),
                    fmt_x(ratio(c.median_ms("sparse", sparsity), dense_ms)),
                ]
            )
            sparse_mib = c.peak_mib("sparse", sparsity)
            peaks.append(
                [
                    *where,
                    output,
                    fmt_mib(dense_mib),
                    fmt_mib(sparse_mib),
                    fmt_x(ratio(sparse_mib, dense_mib)),
                ]
            )
    lines += table(["shape", "sparsity", "dense", "sparse", "sparse / dense"], times)
    lines += [
        "",
        "Peak resident memory of that call over the process's resident memory before it, MiB",
        "(median); the output array is part of it.",
        "",
    ]
    header = ["shape", "sparsity", "output", "dense", "sparse", "sparse / dense"]
    return lines + table(header, peaks) + _failures(calls)


CONDENSED_OPS = {
    "forward": "Forward, `x @ W`",
    "backward": "Forward and backward (loss and gradient)",
    "stream": "Streaming TD(λ) step (gradient, trace, update)",
}


def _condensed_section(results: condensed_.Results | None) -> list[str]:
    if results is None:
        return []
    lines = [
        "",
        "## Condensed kernels",
        "",
        "Milliseconds a jitted call on a batch of `(batch, in)`; the dense kernel is the same",
        "at both sparsities. *masked*: `x @ (W * mask)`.",
    ]
    header = ["shape", "sparsity", "batch", "dense", "condensed", "condensed / dense"]
    header.append("masked / dense")
    for op, title in CONDENSED_OPS.items():
        body = [
            [
                fmt_shape(case.shape),
                str(case.sparsity),
                str(case.batch),
                fmt_ms(case.ms("dense", op)),
                fmt_ms(case.ms("condensed", op)),
                fmt_x(ratio(case.ms("condensed", op), case.ms("dense", op))),
                fmt_x(ratio(case.ms("masked", op), case.ms("dense", op))),
            ]
            for case in results.cases
        ]
        lines += ["", f"### {title}", "", *table(header, body)]
    lines += [
        "",
        "### Kernel and Adam state",
        "",
        "MiB of the kernel (values, and indices or mask) and of `optax.adam`'s `mu` and `nu`.",
        "",
    ]
    body = []
    for (shape, sparsity), sizes in results.bytes.items():
        dense, ours, masked = (sizes[kind] / MIB for kind in condensed_.KINDS)
        body.append(
            [
                fmt_shape(shape),
                str(sparsity),
                fmt_mib(dense),
                fmt_mib(ours),
                fmt_x(ratio(ours, dense)),
                fmt_mib(masked),
                fmt_x(ratio(masked, dense)),
            ]
        )
    header = ["shape", "sparsity", "dense", "condensed", "condensed / dense", "masked"]
    return lines + table([*header, "masked / dense"], body)


def _anchors_section(rows: list[Row]) -> list[str]:
    rows = [row for row in rows if row.anchors]
    if not rows:
        return []
    lines = [
        "",
        "## PyTorch anchors",
        "",
        "Milliseconds a call of eager PyTorch on the same CPU; sparseinit: the warm jitted call.",
        "",
    ]
    header = ["shape", "sparsity", "sparseinit", "torch `sparse_`", "sparseinit / `sparse_`"]
    header += ["reference loop", "sparseinit / loop"]
    body = []
    for row in rows:
        ours = row.warm_ms("sparse")
        torch_ms = row.anchors.get("torch sparse_")
        loop_ms = row.anchors.get("reference loop")
        body.append(
            [
                fmt_shape(row.shape),
                str(row.sparsity),
                fmt_ms(ours),
                fmt_ms(torch_ms),
                fmt_x(ratio(ours, torch_ms)),
                fmt_ms(loop_ms),
                fmt_x(ratio(ours, loop_ms)),
            ]
        )
    return lines + table(header, body)


def _cold_start_section(cold: dict[str, dict[str, list[float]]] | None) -> list[str]:
    if not cold:
        return []
    runs = len(cold["dense"]["total"])
    lines = [
        "",
        "## Cold start of a 784-256-256-10 `nnx` MLP",
        "",
        f"Milliseconds, median of {runs} fresh process(es) each; *total*: spawn to ready params.",
        "",
    ]
    body = []
    for kind in ("dense", "sparse"):
        parts = ("total", "imports", "build")
        body.append([kind, *(fmt_ms(1e3 * statistics.median(cold[kind][p])) for p in parts)])
    body.append(
        [
            "sparse / dense",
            *(
                fmt_x(ratio(*(statistics.median(cold[k][p]) for k in ("sparse", "dense"))))
                for p in ("total", "imports", "build")
            ),
        ]
    )
    return lines + table(["kernels", "total", "imports", "build"], body)
