"""The Markdown report of a benchmark run, and the project's targets it ends with.

``benchmarks/RESULTS.md`` is this report, included as is in the docs, and
``tests/test_benchmarks.py`` reads its tables: change its format deliberately.
"""

import dataclasses
import datetime
import importlib.metadata
import os
import platform
import statistics
import subprocess
from pathlib import Path

import jax

from benchmarks.measure import (
    DETAILED_SPARSITIES,
    SLOW_CALL_SECONDS,
    SWEEP_KEYS,
    Row,
    fmt_shape,
)

HERE = Path(__file__).resolve().parent


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def fmt_ms(ms: float | None) -> str:
    if ms is None:
        return "-"
    return f"{ms:.3g}" if ms < 1000 else f"{ms:,.0f}"


def fmt_x(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}x"


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
        ("platform", platform.platform()),
        ("CPU", cpu),
        ("cores", str(os.cpu_count())),
        ("load average (1, 5, 15 min) at start", load),
        ("JAX backend", f"{jax.default_backend()} ({devices})"),
        ("python", platform.python_version()),
        ("jax", version("jax")),
        ("jaxlib", version("jaxlib")),
        ("flax", version("flax")),
        ("numpy", version("numpy")),
        ("torch (anchors only)", version("torch")),
        ("sparseinit", f"{version('sparseinit')} ({commit})"),
    ]


# ---- the targets -------------------------------------------------------------------------
@dataclasses.dataclass
class Target:
    """One target of the project and whether the numbers of this run meet it."""

    what: str
    limit: str
    value: str
    met: bool | None

    @property
    def status(self) -> str:
        return {True: "met", False: "**not met**", None: "not measured"}[self.met]


def check(value: float | None, limit: float, at_most: bool) -> bool | None:
    if value is None:
        return None
    return value <= limit if at_most else value >= limit


def targets(rows: list[Row], cold: dict[str, dict[str, list[float]]] | None) -> list[Target]:
    found = {(row.shape, row.sparsity): row for row in rows}
    out: list[Target] = []

    def warm_target(shape: tuple[int, ...], limit: float, aim: bool = False) -> None:
        row = found.get((shape, 0.9))
        value = ratio(row.warm_ms("sparse"), row.warm_ms("dense")) if row else None
        label = "aim" if aim else "target"
        what = f"warm `sparse(0.9)` / dense at {fmt_shape(shape)} ({label})"
        out.append(Target(what, f"<= {limit}x", fmt_x(value), check(value, limit, True)))

    for row in rows:
        value = ratio(row.warm_ms("sparse"), row.warm_ms("dense"))
        limit = 1.0 if row.sparsity >= 0.9 else 1.5
        what = f"warm `sparse({row.sparsity})` / dense at {fmt_shape(row.shape)}"
        out.append(Target(what, f"<= {limit}x", fmt_x(value), check(value, limit, True)))
    warm_target((4096, 4096), 0.5, aim=True)
    for row in rows:
        if row.warm_ms("traced8") is None or row.sparsity != 0.9:
            continue
        value = ratio(row.warm_ms("traced8"), row.warm_ms("dense8"))
        what = f"traced `sparse(0.9)` under jit(vmap) over {SWEEP_KEYS} keys / dense at "
        what += fmt_shape(row.shape)
        out.append(Target(what, "<= 1.0x", fmt_x(value), check(value, 1.0, True)))
    for row in rows:
        if not row.first:
            continue
        value = ratio(row.first_ms("sparse"), row.first_ms("dense"))
        what = f"first call / dense at {fmt_shape(row.shape)}, sparsity {row.sparsity}"
        out.append(Target(what, "<= 1.5x", fmt_x(value), check(value, 1.5, True)))
    # The naive baseline is timed at the detailed sparsities only.
    big = [row for row in rows if row.shape == (4096, 4096) and row.sparsity in DETAILED_SPARSITIES]
    for row in big or [None]:
        value = ratio(row.warm_ms("naive"), row.warm_ms("sparse")) if row else None
        what = "warm speed-up over the naive baseline at 4096x4096"
        what += f", sparsity {row.sparsity}" if row else ""
        out.append(Target(what, ">= 5x", fmt_x(value), check(value, 5.0, False)))
    for row in rows:
        if row.sparsity not in DETAILED_SPARSITIES:
            continue
        value = row.memory_ratio("sparse")
        what = f"memory / output size at {fmt_shape(row.shape)}, sparsity {row.sparsity}"
        out.append(Target(what, "<= 2x", fmt_x(value), check(value, 2.0, True)))

    def cold_ratio(part: str) -> float | None:
        if not cold:
            return None
        return ratio(
            statistics.median(cold["sparse"][part]), statistics.median(cold["dense"][part])
        )

    value = cold_ratio("total")
    what = "cold start of the nnx MLP, sparse / dense (process start to ready params)"
    out.append(Target(what, "<= 1.2x", fmt_x(value), check(value, 1.2, True)))
    build = cold_ratio("build")
    what = "eager build of the nnx MLP alone, sparse / dense"
    out.append(Target(what, "<= 1.3x", fmt_x(build), check(build, 1.3, True)))
    return out


# ---- the report --------------------------------------------------------------------------
def report(
    header: list[tuple[str, str]],
    rows: list[Row],
    cold: dict[str, dict[str, list[float]]] | None,
    settings: dict[str, str],
) -> str:
    """The whole report: header and settings, then one section per kind of figure."""
    lines = ["# sparseinit benchmarks", ""]
    lines += [
        "Written by `benchmarks/run.py` (`nox -s bench`); see `benchmarks/README.md` for what",
        "is measured and how. All figures come from the one run described below.",
        "",
        "| | |",
        "|---|---|",
    ]
    lines += [f"| {k} | {v} |" for k, v in header]
    lines += [f"| {k} | {v} |" for k, v in settings.items()]
    lines += _initializers_section(rows)
    lines += _one_sort_section(rows)
    lines += _sweeps_section(rows)
    lines += _anchors_section(rows)
    lines += _memory_section(rows)
    lines += _cold_start_section(cold)
    lines += _targets_section(rows, cold)
    return "\n".join(lines) + "\n"


def _initializers_section(rows: list[Row]) -> list[str]:
    lines = [
        "",
        "## Initializers (float32)",
        "",
        "Warm: median over repeats of the mean time of a jitted call on a fresh key. First call:",
        "trace + compile + run of a new `jax.jit` of the initializer, median over fresh",
        "processes. Naive: a per-neuron `jax.random.permutation` + `vmap` mask.",
        "Memory: XLA's argument + output + temp bytes of the compiled program, over the output",
        "array's size.",
        "",
        "| shape | sparsity | dense ms | sparse ms | sparse / dense | dense first ms"
        " | sparse first ms | first / dense | naive ms | naive / sparse | sparse memory"
        " | dependent steps |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    notes: list[str] = []
    for row in rows:
        naive = row.warm.get("naive")
        naive_ms = fmt_ms(row.warm_ms("naive"))
        if naive is not None and naive.slow:
            naive_ms += " *"
            note = (
                f"\\* naive at {fmt_shape(row.shape)}, sparsity {row.sparsity}: median of "
                f"{len(naive.repeats)} single calls only, as it takes over "
                f"{SLOW_CALL_SECONDS:g} s a call."
            )
            notes.append(note)
        cells = [
            fmt_shape(row.shape),
            str(row.sparsity),
            fmt_ms(row.warm_ms("dense")),
            fmt_ms(row.warm_ms("sparse")),
            fmt_x(ratio(row.warm_ms("sparse"), row.warm_ms("dense"))),
            fmt_ms(row.first_ms("dense")),
            fmt_ms(row.first_ms("sparse")),
            fmt_x(ratio(row.first_ms("sparse"), row.first_ms("dense"))),
            naive_ms,
            fmt_x(ratio(row.warm_ms("naive"), row.warm_ms("sparse"))),
            fmt_x(row.memory_ratio("sparse")),
            str(row.steps),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    if notes:
        lines += ["", *(n + "  " for n in notes)]
    lines += [
        "",
        "*Dependent steps*: rounds of the mask's correction in one call, median over 5 keys (each",
        "round applies a batch of proposals for every neuron at once); on an accelerator each",
        "costs a few kernel launches.",
    ]
    return lines


def _one_sort_section(rows: list[Row]) -> list[str]:
    detailed = [row for row in rows if row.first.get("sort")]
    if not detailed:
        return []
    lines = [
        "",
        "### The smallest exact program: one sort per neuron",
        "",
        "An exact mask needs a selection per neuron. The smallest exact program we know of sorts",
        "every neuron's random words at once and zeros the `k` smallest (`one_sort` in",
        "`measure.py`), with words and uniform values from sparseinit's own generator: its first",
        "call is about the least an exact initializer can cost to compile, and its warm time what",
        "that program then costs on every call.",
        "",
        "| shape | sparsity | dense first ms | sort first ms | sort first / dense"
        " | sparse first / dense | sort ms | sort / dense |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in detailed:
        cells = [
            fmt_shape(row.shape),
            str(row.sparsity),
            fmt_ms(row.first_ms("dense")),
            fmt_ms(row.first_ms("sort")),
            fmt_x(ratio(row.first_ms("sort"), row.first_ms("dense"))),
            fmt_x(ratio(row.first_ms("sparse"), row.first_ms("dense"))),
            fmt_ms(row.warm_ms("sort")),
            fmt_x(ratio(row.warm_ms("sort"), row.warm_ms("dense"))),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _sweeps_section(rows: list[Row]) -> list[str]:
    lines = [
        "",
        f"### Sweeps: `jit(vmap)` over {SWEEP_KEYS} keys",
        "",
        "Warm time of one call that initialises the kernel for 8 keys: dense, sparse with the",
        "sparsity a Python float, and sparse with the sparsity traced (an argument of the jitted",
        "function, as in a sweep over sparsities that compiles once).",
        "",
        "| shape | sparsity | dense ms | concrete ms | traced ms | traced / dense"
        " | traced / concrete | traced steps |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        if row.warm_ms("traced8") is None:
            continue
        cells = [
            fmt_shape(row.shape),
            str(row.sparsity),
            fmt_ms(row.warm_ms("dense8")),
            fmt_ms(row.warm_ms("sparse8")),
            fmt_ms(row.warm_ms("traced8")),
            fmt_x(ratio(row.warm_ms("traced8"), row.warm_ms("dense8"))),
            fmt_x(ratio(row.warm_ms("traced8"), row.warm_ms("sparse8"))),
            "-" if row.traced_steps is None else str(row.traced_steps),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "*Traced steps*: the dependent steps of one call with the sparsity traced, median over",
        "5 keys. A traced count's rounds are sized for its path rather than for the count",
        "(see the Performance page), so it may take a few rounds where the concrete value",
        "takes one.",
    ]
    return lines


def _anchors_section(rows: list[Row]) -> list[str]:
    rows = [row for row in rows if row.anchors]
    if not rows:
        return []
    lines = [
        "",
        "### PyTorch anchors",
        "",
        "Eager PyTorch on the same CPU, as its users call it (see `benchmarks/anchors.py`):",
        "`torch.nn.init.sparse_` (zeros per input, normal weights) and the published",
        "reference's per-neuron `randperm` loop (the semantics of `sparse`), on the",
        "`(out, fan_in)` weight with as many entries as the kernel. sparseinit: the warm jitted",
        "call above. A ratio below 1 means sparseinit is faster.",
        "",
        "| shape | sparsity | sparseinit ms | torch sparse_ ms | sparseinit / sparse_ "
        "| reference loop ms | sparseinit / reference |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        ours = row.warm_ms("sparse")
        torch_ms = row.anchors.get("torch sparse_")
        loop_ms = row.anchors.get("reference loop")
        lines.append(
            f"| {fmt_shape(row.shape)} | {row.sparsity} | {fmt_ms(ours)} | {fmt_ms(torch_ms)} "
            f"| {fmt_x(ratio(ours, torch_ms))} | {fmt_ms(loop_ms)} "
            f"| {fmt_x(ratio(ours, loop_ms))} |"
        )
    return lines


def _memory_section(rows: list[Row]) -> list[str]:
    lines = [
        "",
        "### Memory of each compiled program",
        "",
        "Argument + output + temp bytes from `jax.jit(f).lower(key).compile().memory_analysis()`:",
        "everything the program can hold at once, whatever the order XLA runs it in. In units of",
        "the output array's size; *temp* is XLA's scratch buffer alone.",
        "",
        "| shape | sparsity | output MiB | dense | dense temp | sparse | sparse temp"
        " | naive | naive temp |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        if not row.memory:
            continue
        size = row.output_bytes()
        cells = [fmt_shape(row.shape), str(row.sparsity), f"{size / 2**20:.2f}"]
        for kind in ("dense", "sparse", "naive"):
            memory = row.memory.get(kind)
            cells += [
                fmt_x(memory.bound / size) if memory else "-",
                fmt_x(memory.temp / size) if memory else "-",
            ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _cold_start_section(cold: dict[str, dict[str, list[float]]] | None) -> list[str]:
    lines = ["", "## Cold start of a 784-256-256-10 `nnx` MLP", ""]
    if not cold:
        lines.append("Not measured in this run.")
        return lines
    runs = len(cold["dense"]["total"])
    lines += [
        f"Median of {runs} fresh process(es) each, alternating dense and sparse. *total*: from",
        "spawning the process to the parameters being ready (interpreter start, importing",
        "jax, flax and sparseinit, building eagerly); *build*: `nnx.Linear` x 3 and",
        "`block_until_ready` alone. Sparse uses `kernel_init=sparseinit.sparse(0.9)`, dense",
        "the default kernel init of `nnx.Linear`.",
        "",
        "| kernels | total ms | imports ms | build ms |",
        "|---|---:|---:|---:|",
    ]
    for kind in ("dense", "sparse"):
        parts = ("total", "imports", "build")
        figures = [1e3 * statistics.median(cold[kind][part]) for part in parts]
        lines.append(f"| {kind} | " + " | ".join(fmt_ms(f) for f in figures) + " |")
    total = ratio(*(statistics.median(cold[k]["total"]) for k in ("sparse", "dense")))
    build = ratio(*(statistics.median(cold[k]["build"]) for k in ("sparse", "dense")))
    lines += ["", f"sparse / dense: total {fmt_x(total)}, build alone {fmt_x(build)}."]
    return lines


def _targets_section(rows: list[Row], cold: dict[str, dict[str, list[float]]] | None) -> list[str]:
    lines = [
        "",
        "## Targets",
        "",
        "Computed from the figures above.",
        "",
        "| target | limit | this run | status |",
        "|---|---:|---:|---|",
    ]
    for target in targets(rows, cold):
        lines.append(f"| {target.what} | {target.limit} | {target.value} | {target.status} |")
    return lines
