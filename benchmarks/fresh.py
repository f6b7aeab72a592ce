"""What the benchmarks measure in a fresh process: first calls, large fan-ins, the cold start.

JAX caches compiled programs within a process, so the cost of an initializer's first call can
only be seen in a process that has not compiled it yet. Each sample here is one child Python
process (with the persistent compilation cache off), and the candidates alternate from one
sample to the next so that the machine's drifts hit them alike.

A first-call child imports jax and sparseinit and runs one unrelated jitted operation (the
start-up every JAX program pays once: backend, compiler) before it times
``jax.block_until_ready(init(key, shape))``: the eager call a Flax model's construction makes.
It also measures the increase of its peak resident memory over the resident memory just before
that call, the high-water mark being reset there (Linux's ``/proc/self/clear_refs``).
"""

import dataclasses
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import jax
import jax.numpy as jnp

import sparseinit
from benchmarks.measure import fmt_shape, one_sort

# The command line: a first-call child re-invokes it with its hidden --child-first-call flag.
ENTRY_POINT = Path(__file__).resolve().with_name("run.py")

# Children must compile from scratch: a persistent compilation cache would hide the cost that
# the first-call and cold-start figures exist to show.
CHILD_ENV = {"JAX_ENABLE_COMPILATION_CACHE": "false"}
# A child that takes longer than this is stopped and reported as failed.
CHILD_TIMEOUT_SECONDS = 900

# Large fan-ins: a first layer on 224x224x3 images, and a very long input with few outputs.
LARGE_FANIN_SHAPES = ((150528, 64), (1_000_000, 4))
MLP_SIZES = (784, 256, 256, 10)

# A candidate of a first-call figure: its kind and sparsity (None for the dense baseline).
Candidate = tuple[str, float | None]


# ---- the child ---------------------------------------------------------------------------
def _memory_kib() -> tuple[int, int] | None:
    """This process's resident memory and its high-water mark, in KiB; None off Linux."""
    try:
        status = Path("/proc/self/status").read_text().splitlines()
    except OSError:
        return None
    fields = dict(line.split(":", 1) for line in status if ":" in line)
    try:
        return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])
    except (KeyError, ValueError, IndexError):
        return None


def _reset_peak() -> bool:
    """Resets the high-water mark of resident memory to the current resident memory."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def initializer(kind: str, sparsity: float) -> Callable[[jax.Array, tuple[int, ...]], jax.Array]:
    """The call a first-call child times: ``init(key, shape)`` in float32."""
    if kind == "dense":
        dense = jax.nn.initializers.lecun_uniform()
        return lambda key, shape: dense(key, shape, jnp.float32)
    if kind == "sparse":
        sparse = sparseinit.sparse(sparsity)
        return lambda key, shape: sparse(key, shape, jnp.float32)
    if kind == "sort":
        # Not an initializer but a function of the user's: it would be jitted as a whole.
        sort = jax.jit(one_sort, static_argnums=(1, 2))
        return lambda key, shape: sort(key, shape, sparsity)
    raise ValueError(f"kind must be 'dense', 'sparse' or 'sort', got {kind!r}")


def child_first_call(kind: str, shape: tuple[int, ...], sparsity: float) -> None:
    """In a fresh process: prints the seconds and the peak memory of one first call."""
    init = initializer(kind, sparsity)
    key = jax.random.key(0)
    # Start-up work every JAX program pays once (backend, compiler) is not the candidate's.
    jax.jit(lambda x: x + 1)(jnp.zeros((), jnp.float32)).block_until_ready()
    key.block_until_ready()
    reset = _reset_peak()
    before = _memory_kib()
    start = time.perf_counter()
    jax.block_until_ready(init(key, shape))
    seconds = time.perf_counter() - start
    after = _memory_kib()
    peak = None
    if reset and before is not None and after is not None:
        peak = 1024 * (after[1] - before[0])
    print(json.dumps({"seconds": seconds, "peak_bytes": peak}))


# ---- the parent --------------------------------------------------------------------------
def run_child(args: Sequence[str]) -> dict[str, float]:
    """Runs a child Python process and returns the JSON object on its last output line."""
    env = {**os.environ, **CHILD_ENV}
    try:
        proc = subprocess.run(
            [sys.executable, *args],
            capture_output=True,
            text=True,
            env=env,
            check=False,
            timeout=CHILD_TIMEOUT_SECONDS,
        )
    except subprocess.TimeoutExpired as err:
        raise RuntimeError(f"child {args[:4]} timed out after {err.timeout:g} s") from None
    if proc.returncode != 0:
        raise RuntimeError(
            f"child {args[:4]} failed with exit code {proc.returncode}:\n{proc.stderr[-4000:]}"
        )
    return json.loads(proc.stdout.strip().splitlines()[-1])


@dataclasses.dataclass(frozen=True)
class Sample:
    """One fresh process's first call: seconds, and bytes of peak memory over its baseline."""

    seconds: float
    peak_bytes: int | None


def first_call(kind: str, shape: tuple[int, ...], sparsity: float | None) -> Sample:
    args = [str(ENTRY_POINT), "--child-first-call", kind, fmt_shape(shape), str(sparsity or 0.0)]
    out = run_child(args)
    return Sample(seconds=out["seconds"], peak_bytes=out.get("peak_bytes"))


@dataclasses.dataclass
class FirstCalls:
    """The first calls of every candidate at one shape, a list of samples each."""

    shape: tuple[int, ...]
    samples: dict[Candidate, list[Sample]]
    # Why a candidate has no (or fewer) samples: its child failed or timed out.
    failed: dict[Candidate, str] = dataclasses.field(default_factory=dict)

    def ms(self, kind: str, sparsity: float | None = None) -> list[float]:
        return [1e3 * s.seconds for s in self.samples.get((kind, sparsity), [])]

    def median_ms(self, kind: str, sparsity: float | None = None) -> float | None:
        ms = self.ms(kind, sparsity)
        return statistics.median(ms) if ms else None

    def peak_mib(self, kind: str, sparsity: float | None = None) -> float | None:
        peaks = [s.peak_bytes for s in self.samples.get((kind, sparsity), [])]
        if not peaks or any(p is None for p in peaks):
            return None
        return statistics.median(peaks) / 2**20


def first_calls(
    shape: tuple[int, ...],
    candidates: Sequence[Candidate],
    processes: int,
    progress: Callable[[str], None],
) -> FirstCalls:
    """``processes`` first calls of each candidate, the candidates alternating.

    A candidate whose child fails or times out is reported as failed and not run again, so
    that one failure (a large fan-in out of memory, say) does not end a long run.
    """
    progress(f"{fmt_shape(shape)}: first calls in fresh processes")
    calls = FirstCalls(shape, {candidate: [] for candidate in candidates})
    for _ in range(processes):
        for candidate in candidates:
            if candidate in calls.failed:
                continue
            try:
                calls.samples[candidate].append(first_call(candidate[0], shape, candidate[1]))
            except RuntimeError as err:
                calls.failed[candidate] = str(err).splitlines()[0]
                progress(f"  {candidate}: {err}")
    return calls


# ---- the cold start of an nnx MLP --------------------------------------------------------
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


def cold_starts(processes: int) -> dict[str, dict[str, list[float]]]:
    """``processes`` cold starts of each kind, dense and sparse alternating."""
    cold = {k: {"total": [], "imports": [], "build": []} for k in ("dense", "sparse")}
    for _ in range(processes):
        for kind in ("dense", "sparse"):
            for name, seconds in cold_start(kind == "sparse").items():
                cold[kind][name].append(seconds)
    return cold
