"""What the benchmarks time, and how.

* the candidates: ``sparseinit.sparse(s)``, the dense baseline, the naive baseline, the
  one-sort program and the ``jit(vmap)`` sweeps over keys;
* warm timing of jitted candidates, interleaved within each repeat;
* the memory of each compiled candidate, from XLA's own accounting;
* the first call and the cold start of an ``nnx`` MLP, each in a fresh child process;
* the dependent steps of the mask's correction;
* PyTorch's anchors, where torch is installed (``anchors.py``);
* every figure of one shape and sparsity gathered in a ``Row``.
"""

import dataclasses
import functools
import json
import math
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import sparseinit
from benchmarks import anchors
from sparseinit import _random
from sparseinit._values import symmetric_uniform

# The command line: a first-call child re-invokes it with its hidden --child-first-call flag.
ENTRY_POINT = Path(__file__).resolve().with_name("run.py")

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


def fmt_shape(shape: tuple[int, ...]) -> str:
    """A shape as text, ``784x256``: in the report, the progress lines and a child's arguments."""
    return "x".join(map(str, shape))


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


def one_sort(key: jax.Array, shape: tuple[int, ...], sparsity: float) -> jax.Array:
    """The smallest exact program we know of, for what an exact first call can cost: one sort.

    Each neuron's zeros are the cells of its ``k`` smallest random words, found with one sort
    of every neuron's words at once; kept weights uniform as in :func:`naive_sparse`. The
    words and the values come from sparseinit's own written-out generator, which compiles
    about three times faster than ``jax.random``'s on CPU, so that its first call pays for the
    selection and not for the generator. It is exact but for ties between 32-bit words (a
    neuron of ``F`` inputs has one with probability about ``F**2 / 2**33``, a little more than
    ``k`` zeros then), which a benchmark can ignore.
    """
    fan_in = math.prod(shape[:-1])
    zeros = sparseinit.num_zeros(sparsity, fan_in, "ceil")
    mask_key, value_key = jax.random.split(key)
    words = _random.bits(mask_key, (shape[-1], fan_in))
    if zeros == 0:
        keep = jnp.ones(words.shape, bool)
    else:
        keep = words > jnp.sort(words, axis=1)[:, zeros - 1 : zeros]
    values = symmetric_uniform(value_key, shape, np.dtype(np.float32)) / math.sqrt(fan_in)
    return jnp.where(keep.T.reshape(shape), values, jnp.zeros((), jnp.float32))


def sort_fn(shape: tuple[int, ...], sparsity: float) -> Callable[[jax.Array], jax.Array]:
    return lambda key: one_sort(key, shape, sparsity)


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


def make_fn(kind: str, shape: tuple[int, ...], sparsity: float) -> Callable[[jax.Array], jax.Array]:
    if kind.endswith("8"):
        return sweep_fn(kind, shape, sparsity)
    if kind == "dense":
        return dense_fn(shape)
    if kind == "sparse":
        return sparse_fn(shape, sparsity)
    if kind == "naive":
        return naive_fn(shape, sparsity)
    if kind == "sort":
        return sort_fn(shape, sparsity)
    raise ValueError(f"kind must be 'dense', 'sparse', 'naive' or 'sort', got {kind!r}")


def dependent_steps(
    shape: tuple[int, ...], sparsity: float, key: jax.Array, *, traced: bool = False
) -> int:
    """The rounds of the mask's correction for one call: its dependent steps.

    ``traced``: the sparsity is an argument of the jitted call, as in a sweep.
    """
    if traced:
        return int(_traced_steps(key, jnp.float32(sparsity), shape))
    return int(_steps(key, sparsity, shape))


def _steps(key: jax.Array, sparsity: float | jax.Array, shape: tuple[int, ...]) -> jax.Array:
    from sparseinit import _build

    plan, traced = sparseinit.sparse(sparsity)._plan(shape, None, None)
    return _build.dependent_steps(plan, key, traced)


# The same with the sparsity an argument of the jitted call.
_traced_steps = jax.jit(_steps, static_argnums=(2,))


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
    args = [str(ENTRY_POINT), "--child-first-call", kind, fmt_shape(shape)]
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


def cold_starts(processes: int) -> dict[str, dict[str, list[float]]]:
    """``processes`` cold starts of each kind, dense and sparse alternating."""
    cold = {k: {"total": [], "imports": [], "build": []} for k in ("dense", "sparse")}
    for _ in range(processes):
        for kind in ("dense", "sparse"):
            for name, seconds in cold_start(kind == "sparse").items():
                cold[kind][name].append(seconds)
    return cold


# ---- every figure of one shape and sparsity ----------------------------------------------
@dataclasses.dataclass
class Row:
    """Every figure of one shape and sparsity."""

    shape: tuple[int, ...]
    sparsity: float
    warm: dict[str, Warm]
    first: dict[str, list[float]]
    memory: dict[str, Memory]
    steps: int
    # The same with the sparsity traced, where the sweep is measured.
    traced_steps: int | None = None
    # PyTorch's milliseconds a call, by anchor, where torch is installed (see anchors.py).
    anchors: dict[str, float] = dataclasses.field(default_factory=dict)

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


def measure_row(
    shape: tuple[int, ...],
    sparsity: float,
    *,
    repeats: int,
    processes: int,
    target_seconds: float,
    keys: Iterator[jax.Array],
    skip_naive: bool,
    progress: Callable[[str], None],
) -> Row:
    """Warm times and dependent steps; at DETAILED_SPARSITIES, memory and first calls too."""
    progress(f"{fmt_shape(shape)} sparsity {sparsity}: warm timing")
    detailed = sparsity in DETAILED_SPARSITIES
    kinds = ["dense", "sparse"]
    if detailed:
        kinds.append("sort")
    if detailed and not skip_naive:
        kinds.append("naive")
    sweep = math.prod(shape) <= SWEEP_MAX_SIZE
    if sweep:
        kinds += ["dense8", "sparse8", "traced8"]
    fns = {kind: jax.jit(make_fn(kind, shape, sparsity)) for kind in kinds}
    warm = time_warm(fns, repeats, target_seconds, keys)
    steps = statistics.median(dependent_steps(shape, sparsity, next(keys)) for _ in range(5))
    traced_steps = None
    if sweep:
        traced = [dependent_steps(shape, sparsity, next(keys), traced=True) for _ in range(5)]
        traced_steps = int(statistics.median(traced))
    memory: dict[str, Memory] = {}
    first: dict[str, list[float]] = {}
    if detailed:
        memory = {
            kind: memory_of(make_fn(kind, shape, sparsity), next(keys))
            for kind in kinds
            if not kind.endswith("8")
        }
        progress(f"{fmt_shape(shape)} sparsity {sparsity}: first calls")
        first = {"dense": [], "sparse": [], "sort": []}
        for _ in range(processes):
            for kind in first:
                first[kind].append(first_call_seconds(kind, shape, sparsity))
    timed_anchors = {}
    if detailed and anchors.available():
        progress(f"{fmt_shape(shape)} sparsity {sparsity}: PyTorch anchors")
        timed_anchors = anchors.time_anchors(shape, sparsity, repeats, target_seconds)
    return Row(shape, sparsity, warm, first, memory, int(steps), traced_steps, timed_anchors)
