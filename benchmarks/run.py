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

Usage::

    python benchmarks/run.py                      # full run, writes benchmarks/RESULTS.md
    python benchmarks/run.py --quick              # one small shape, few repeats, prints only
    python benchmarks/run.py --shapes 1024x1024 3x3x256x256 --repeats 9 --out /tmp/r.md
"""

import argparse
import dataclasses
import datetime
import functools
import importlib.metadata
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import jax
import jax.numpy as jnp

import sparseinit

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "RESULTS.md"

FULL_SHAPES = ((784, 256), (1024, 1024), (4096, 4096), (3, 3, 256, 256))
QUICK_SHAPES = ((784, 256),)
SPARSITIES = (0.1, 0.3, 0.5, 0.7, 0.9, 0.99)
# First calls and the naive baseline change little with the sparsity and take long to measure:
# they are measured at these sparsities only.
DETAILED_SPARSITIES = (0.5, 0.9)
# The sweep figure: a traced sparsity under jit(vmap) over this many keys.
SWEEP_KEYS = 8
SWEEP_MAX_SIZE = 1024 * 1024
MLP_SIZES = (784, 256, 256, 10)

# A candidate whose warm call takes longer than this is timed with at most SLOW_REPEATS
# repeats of one call: the naive baseline at 4096x4096 takes seconds a call.
SLOW_CALL_SECONDS = 1.0
SLOW_REPEATS = 2

# Children must compile from scratch: a persistent compilation cache would hide the cost that
# the first-call and cold-start figures exist to show.
CHILD_ENV = {"JAX_ENABLE_COMPILATION_CACHE": "false"}


# ---- the candidates ----------------------------------------------------------------------
def dense_fn(shape: tuple[int, ...]) -> Callable[[jax.Array], jax.Array]:
    """The dense baseline: what a Flax layer would use without sparseinit."""
    init = jax.nn.initializers.lecun_uniform()
    return lambda key: init(key, shape, jnp.float32)


def sparse_fn(shape: tuple[int, ...], sparsity: float) -> Callable[[jax.Array], jax.Array]:
    """The library under test, with its defaults (uniform kept weights, ceil rounding)."""
    init = sparseinit.sparse(sparsity)
    return lambda key: init(key, shape, jnp.float32)


def naive_sparse(key: jax.Array, shape: tuple[int, ...], sparsity: float) -> jax.Array:
    """Exact per-neuron sparsity the obvious way: one random permutation per neuron.

    The same semantics as ``sparseinit.sparse`` (neurons on the last axis, ``ceil`` count,
    ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` kept weights), written as a user would write it
    without the library: a full sort-based shuffle of every neuron's fan-in.
    """
    fan_in = math.prod(shape[:-1])
    neurons = shape[-1]
    zeros = sparseinit.num_zeros(sparsity, fan_in, "ceil")
    mask_key, value_key = jax.random.split(key)

    def keep_row(row_key: jax.Array) -> jax.Array:
        return jax.random.permutation(row_key, fan_in) >= zeros

    keep = jax.vmap(keep_row)(jax.random.split(mask_key, neurons))
    bound = 1.0 / math.sqrt(fan_in)
    values = jax.random.uniform(value_key, shape, jnp.float32, -bound, bound)
    return jnp.where(keep.T.reshape(shape), values, jnp.zeros((), jnp.float32))


def naive_fn(shape: tuple[int, ...], sparsity: float) -> Callable[[jax.Array], jax.Array]:
    return lambda key: naive_sparse(key, shape, sparsity)


@functools.partial(jax.jit, static_argnums=(2,))
def _traced_sweep(keys: jax.Array, sparsity: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    # A jit of its own keeps the sparsity traced inside the caller's jit.
    return jax.vmap(lambda k: sparseinit.sparse(sparsity)(k, shape, jnp.float32))(keys)


def sweep_fn(
    kind: str, shape: tuple[int, ...], sparsity: float
) -> Callable[[jax.Array], jax.Array]:
    """``vmap`` over SWEEP_KEYS keys: dense, sparse with a concrete or a traced sparsity."""
    if kind == "dense8":
        init = dense_fn(shape)
    elif kind == "sparse8":
        init = sparse_fn(shape, sparsity)
    else:

        def traced(key: jax.Array) -> jax.Array:
            keys = jax.random.split(key, SWEEP_KEYS)
            return _traced_sweep(keys, jnp.float32(sparsity), shape)

        return traced
    return lambda key: jax.vmap(init)(jax.random.split(key, SWEEP_KEYS))


def dependent_steps(shape: tuple[int, ...], sparsity: float, key: jax.Array) -> int:
    """The loop iterations of the mask's correction for one call: its dependent steps."""
    from sparseinit import _build

    init = sparseinit.sparse(sparsity)
    plan, _ = init._plan(shape, None, None)
    return int(_build.dependent_steps(plan, key, None))


def make_fn(kind: str, shape: tuple[int, ...], sparsity: float) -> Callable[[jax.Array], jax.Array]:
    if kind.endswith("8"):
        return sweep_fn(kind, shape, sparsity)
    if kind == "dense":
        return dense_fn(shape)
    if kind == "sparse":
        return sparse_fn(shape, sparsity)
    if kind == "naive":
        return naive_fn(shape, sparsity)
    raise ValueError(f"kind must be 'dense', 'sparse' or 'naive', got {kind!r}")


# ---- warm timing -------------------------------------------------------------------------
def fresh_keys(seed: int) -> Iterator[jax.Array]:
    """Distinct keys, made (and ready) before the call that uses them is timed."""
    counter = seed
    while True:
        key = jax.random.key(counter)
        key.block_until_ready()
        counter += 1
        yield key


def time_call(fn: Callable[[jax.Array], jax.Array], key: jax.Array) -> float:
    start = time.perf_counter()
    fn(key).block_until_ready()
    return time.perf_counter() - start


@dataclasses.dataclass
class Warm:
    """Warm timing of one candidate: per-repeat mean seconds a call."""

    calls_per_repeat: int
    slow: bool = False
    repeats: list[float] = dataclasses.field(default_factory=list)

    @property
    def median_ms(self) -> float:
        return 1e3 * statistics.median(self.repeats)


def time_warm(
    fns: dict[str, Callable[[jax.Array], jax.Array]],
    repeats: int,
    target_seconds: float,
    keys: Iterator[jax.Array],
) -> dict[str, Warm]:
    """Median warm time of each jitted candidate, the candidates interleaved in each repeat.

    Each candidate is run twice first: the first call compiles, the second (warm) sets how
    many calls make up a repeat (about ``target_seconds`` of work). Every repeat runs every
    candidate, in an order rotated from one repeat to the next, so slow drifts of the machine
    hit them alike.
    """
    results: dict[str, Warm] = {}
    for name, fn in fns.items():
        fn(next(keys)).block_until_ready()
        one = time_call(fn, next(keys))
        calls = max(1, min(1000, round(target_seconds / max(one, 1e-9))))
        slow = one > SLOW_CALL_SECONDS
        # A slow candidate's calibration call is already a warm call: it counts as a repeat.
        results[name] = Warm(calls_per_repeat=calls, slow=slow, repeats=[one] if slow else [])
    names = list(fns)
    for r in range(repeats):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            warm = results[name]
            if warm.slow and len(warm.repeats) >= min(repeats, SLOW_REPEATS):
                continue
            total = sum(time_call(fns[name], next(keys)) for _ in range(warm.calls_per_repeat))
            warm.repeats.append(total / warm.calls_per_repeat)
    return results


# ---- memory ------------------------------------------------------------------------------
@dataclasses.dataclass
class Memory:
    """XLA's accounting of one compiled candidate, in bytes."""

    argument: int
    output: int
    temp: int
    alias: int

    @property
    def bound(self) -> int:
        # Everything the program holds at once at most: its inputs, its outputs and its
        # scratch buffer (aliased bytes are counted once). XLA's ``peak_memory_in_bytes`` is
        # not used: on CPU it leaves out the scratch buffer, where the sort and random bits
        # of the baselines live.
        return self.argument + self.output + self.temp - self.alias


def memory_of(fn: Callable[[jax.Array], jax.Array], key: jax.Array) -> Memory:
    stats = jax.jit(fn).lower(key).compile().memory_analysis()
    return Memory(
        argument=int(stats.argument_size_in_bytes),
        output=int(stats.output_size_in_bytes),
        temp=int(stats.temp_size_in_bytes),
        alias=int(stats.alias_size_in_bytes),
    )


# ---- fresh processes ---------------------------------------------------------------------
def run_child(args: Sequence[str]) -> dict[str, float]:
    """Runs a child Python process and returns the JSON object on its last output line."""
    env = {**os.environ, **CHILD_ENV}
    proc = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=env, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"child {args[:3]} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def child_first_call(kind: str, shape: tuple[int, ...], sparsity: float) -> None:
    """In a fresh process: seconds of the first jitted call of one candidate."""
    key = jax.random.key(0)
    # Start-up work every JAX program pays once (backend, compiler) is not the candidate's.
    jax.jit(lambda x: x + 1)(jnp.zeros((), jnp.float32)).block_until_ready()
    key.block_until_ready()
    fn = jax.jit(make_fn(kind, shape, sparsity))
    seconds = time_call(fn, key)
    print(json.dumps({"seconds": seconds}))


def first_call_seconds(kind: str, shape: tuple[int, ...], sparsity: float) -> float:
    args = [str(Path(__file__).resolve()), "--child-first-call", kind, fmt_shape(shape)]
    return run_child([*args, str(sparsity)])["seconds"]


COLD_START = """
import time
start = time.time()
import json
import jax
import sparseinit
from flax import nnx
imported = time.time()
sizes = {sizes}
extra = {{"kernel_init": sparseinit.sparse({sparsity})}} if {sparse} else {{}}
rngs = nnx.Rngs(0)
layers = []
for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
    layers += [nnx.Linear(fan_in, fan_out, rngs=rngs, **extra), nnx.relu]
model = nnx.Sequential(*layers[:-1])
jax.block_until_ready(nnx.state(model))
built = time.time()
print(json.dumps({{"ready": built, "imports": imported - start, "build": built - imported}}))
"""


def cold_start(sparse: bool) -> dict[str, float]:
    """One fresh process building the MLP: seconds from spawn to ready params, and the build."""
    code = COLD_START.format(sizes=MLP_SIZES, sparsity=0.9, sparse=sparse)
    spawned = time.time()
    out = run_child(["-c", code])
    return {"total": out["ready"] - spawned, "imports": out["imports"], "build": out["build"]}


# ---- the report --------------------------------------------------------------------------
@dataclasses.dataclass
class Row:
    """Every figure of one shape and sparsity."""

    shape: tuple[int, ...]
    sparsity: float
    warm: dict[str, Warm]
    first: dict[str, list[float]]
    memory: dict[str, Memory]
    steps: int

    def warm_ms(self, kind: str) -> float | None:
        return self.warm[kind].median_ms if kind in self.warm else None

    def first_ms(self, kind: str) -> float | None:
        return 1e3 * statistics.median(self.first[kind]) if self.first.get(kind) else None

    def output_bytes(self) -> int:
        return 4 * math.prod(self.shape)

    def memory_ratio(self, kind: str) -> float | None:
        if kind not in self.memory:
            return None
        return self.memory[kind].bound / self.output_bytes()


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def fmt_shape(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))


def fmt_ms(ms: float | None) -> str:
    if ms is None:
        return "-"
    return f"{ms:.3g}" if ms < 1000 else f"{ms:,.0f}"


def fmt_x(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}x"


def machine() -> list[tuple[str, str]]:
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
        ("sparseinit", f"{version('sparseinit')} ({commit})"),
    ]


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
    big = [row for row in rows if row.shape == (4096, 4096)]
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
    value = None
    if cold:
        value = ratio(
            statistics.median(cold["sparse"]["total"]), statistics.median(cold["dense"]["total"])
        )
    what = "cold start of the nnx MLP, sparse / dense (process start to ready params)"
    out.append(Target(what, "<= 1.2x", fmt_x(value), check(value, 1.2, True)))
    build = None
    if cold:
        build = ratio(
            statistics.median(cold["sparse"]["build"]), statistics.median(cold["dense"]["build"])
        )
    what = "eager build of the nnx MLP alone, sparse / dense"
    out.append(Target(what, "<= 1.3x", fmt_x(build), check(build, 1.3, True)))
    return out


def report(
    header: list[tuple[str, str]],
    rows: list[Row],
    cold: dict[str, dict[str, list[float]]] | None,
    settings: dict[str, str],
) -> str:
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
    lines += [
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
        "*Dependent steps*: loop iterations of the mask's correction in one call (each makes",
        "8 proposals per neuron, unrolled); on an accelerator each costs a few kernel launches.",
        "",
        f"### Sweeps: `jit(vmap)` over {SWEEP_KEYS} keys",
        "",
        "Warm time of one call that initialises the kernel for 8 keys: dense, sparse with the",
        "sparsity a Python float, and sparse with the sparsity traced (an argument of the jitted",
        "function, as in a sweep over sparsities that compiles once).",
        "",
        "| shape | sparsity | dense ms | concrete ms | traced ms | traced / dense"
        " | traced / concrete |",
        "|---|---:|---:|---:|---:|---:|---:|",
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
        ]
        lines.append("| " + " | ".join(cells) + " |")

    lines += [
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

    lines += ["", "## Cold start of a 784-256-256-10 `nnx` MLP", ""]
    if cold:
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
    else:
        lines.append("Not measured in this run.")

    lines += [
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
    return "\n".join(lines) + "\n"


# ---- main --------------------------------------------------------------------------------
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
    parser.add_argument("--sparsities", nargs="+", type=parse_sparsity, help="default 0.5 0.9")
    parser.add_argument("--skip-naive", action="store_true", help="do not time the naive baseline")
    parser.add_argument("--skip-cold", action="store_true", help="do not time the cold start")
    parser.add_argument("--child-first-call", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    jax.config.update("jax_enable_compilation_cache", False)
    if args.child_first_call:
        kind, shape, sparsity = args.child_first_call
        child_first_call(kind, parse_shape(shape), float(sparsity))
        return 0

    shapes = args.shapes or (QUICK_SHAPES if args.quick else FULL_SHAPES)
    sparsities = args.sparsities or SPARSITIES
    repeats = args.repeats or (3 if args.quick else 7)
    processes = args.processes or (1 if args.quick else 5)
    target_seconds = 0.02 if args.quick else 0.25
    out = args.out if args.out is not None else (None if args.quick else DEFAULT_OUT)

    # Taken before any work, so that the date and the load are those of the start of the run.
    header = machine()
    keys = fresh_keys(seed=1)
    rows: list[Row] = []
    for shape in shapes:
        for sparsity in sparsities:
            progress(f"{fmt_shape(shape)} sparsity {sparsity}: warm timing")
            detailed = sparsity in DETAILED_SPARSITIES
            kinds = ["dense", "sparse"]
            if detailed and not args.skip_naive:
                kinds.append("naive")
            if math.prod(shape) <= SWEEP_MAX_SIZE:
                kinds += ["dense8", "sparse8", "traced8"]
            fns = {kind: jax.jit(make_fn(kind, shape, sparsity)) for kind in kinds}
            warm = time_warm(fns, repeats, target_seconds, keys)
            steps = statistics.median(
                dependent_steps(shape, sparsity, next(keys)) for _ in range(5)
            )
            memory: dict[str, Memory] = {}
            first: dict[str, list[float]] = {}
            if detailed:
                memory = {
                    kind: memory_of(make_fn(kind, shape, sparsity), next(keys))
                    for kind in kinds
                    if not kind.endswith("8")
                }
                progress(f"{fmt_shape(shape)} sparsity {sparsity}: first calls")
                first = {"dense": [], "sparse": []}
                for _ in range(processes):
                    for kind in first:
                        first[kind].append(first_call_seconds(kind, shape, sparsity))
            rows.append(Row(shape, sparsity, warm, first, memory, int(steps)))

    cold: dict[str, dict[str, list[float]]] | None = None
    if not args.skip_cold:
        progress("cold start")
        cold = {k: {"total": [], "imports": [], "build": []} for k in ("dense", "sparse")}
        for _ in range(processes):
            for kind in ("dense", "sparse"):
                for name, seconds in cold_start(kind == "sparse").items():
                    cold[kind][name].append(seconds)

    settings = {
        "mode": "quick (not reference figures)" if args.quick else "full",
        "warm repeats": str(repeats),
        "fresh processes per first-call / cold-start figure": str(processes),
        "first call measured": "in a fresh process per sample, after one unrelated jitted op",
        "command": " ".join(["python benchmarks/run.py", *(argv or sys.argv[1:])]),
    }
    text = report(header, rows, cold, settings)
    print(text)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
        progress(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
