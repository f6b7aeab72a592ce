"""What the benchmarks time, and how.

* the candidates: ``sparseinit.sparse(s)``, the dense baseline, the naive baseline, the
  one-sort program and the ``jit(vmap)`` sweeps over keys;
* warm timing of jitted candidates, interleaved within each repeat;
* the memory of each compiled candidate, from XLA's own accounting;
* PyTorch's anchors, where torch is installed (``anchors.py``);
* every warm figure of one shape and sparsity gathered in a ``Row``.

What runs in a fresh process (first calls, large fan-ins, the cold start) is in ``fresh.py``;
the condensed kernels' forward and backward passes in ``condensed.py``. Only the public API is
used, but for the one-sort baseline's generator (see :func:`one_sort`).
"""

import dataclasses
import functools
import math
import statistics
import time
from collections.abc import Callable, Hashable, Iterator
from typing import Any, TypeVar

import jax
import jax.numpy as jnp
import numpy as np

import sparseinit
from benchmarks import anchors

try:
    # sparseinit's written-out generator: private, so its absence is not an error.
    from sparseinit._random import bits as _library_bits
    from sparseinit._values import symmetric_uniform as _library_uniform
except ImportError:
    _library_bits = _library_uniform = None

# A candidate's name in a warm timing: a string here, a tuple in ``condensed.py``.
K = TypeVar("K", bound=Hashable)

# Where one sort's words and values come from, for the report.
ONE_SORT_GENERATOR = "jax.random" if _library_bits is None else "sparseinit's generator"

# First calls, memory and the naive baseline change little with the sparsity and take long to
# measure: they are measured at these sparsities only.
DETAILED_SPARSITIES = (0.5, 0.9)
# The sweep figure: a traced sparsity under jit(vmap) over this many keys.
SWEEP_KEYS = 8
SWEEP_MAX_SIZE = 1024 * 1024

# A candidate whose warm call takes longer than this is timed with at most SLOW_REPEATS
# repeats of one call: the naive baseline at 4096x4096 takes seconds a call.
SLOW_CALL_SECONDS = 1.0
SLOW_REPEATS = 2


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
    words and the values come from sparseinit's own written-out generator where this version
    has it (it compiles faster than ``jax.random``'s on CPU, so that the first call pays for
    the selection and not for the generator), from ``jax.random`` otherwise. It is exact but
    for ties between 32-bit words (a neuron of ``F`` inputs has one with probability about
    ``F**2 / 2**33``, a little more than ``k`` zeros then), which a benchmark can ignore.
    """
    fan_in = math.prod(shape[:-1])
    zeros = sparseinit.num_zeros(sparsity, fan_in, "ceil")
    mask_key, value_key = jax.random.split(key)
    if _library_bits is None:
        words = jax.random.bits(mask_key, (shape[-1], fan_in), jnp.uint32)
        values = jax.random.uniform(value_key, shape, jnp.float32, -1.0, 1.0)
    else:
        words = _library_bits(mask_key, (shape[-1], fan_in))
        values = _library_uniform(value_key, shape, np.dtype(np.float32))
    if zeros == 0:
        keep = jnp.ones(words.shape, bool)
    else:
        keep = words > jnp.sort(words, axis=1)[:, zeros - 1 : zeros]
    values = values / math.sqrt(fan_in)
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


# ---- warm timing -------------------------------------------------------------------------
def fresh_keys(seed: int) -> Iterator[jax.Array]:
    """Distinct keys, made (and ready) before the call that uses them is timed."""
    counter = seed
    while True:
        key = jax.random.key(counter)
        key.block_until_ready()
        counter += 1
        yield key


def time_call(fn: Callable[[jax.Array], Any], key: jax.Array) -> float:
    start = time.perf_counter()
    jax.block_until_ready(fn(key))
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
    fns: dict[K, Callable[[jax.Array], Any]],
    repeats: int,
    target_seconds: float,
    keys: Iterator[jax.Array],
) -> dict[K, Warm]:
    """Median warm time of each jitted candidate, the candidates interleaved in each repeat.

    Each candidate is run twice first: the first call compiles, the second (warm) sets how
    many calls make up a repeat (about ``target_seconds`` of work). Every repeat runs every
    candidate, in an order rotated from one repeat to the next, so slow drifts of the machine
    hit them alike.
    """
    results: dict[K, Warm] = {}
    for name, fn in fns.items():
        jax.block_until_ready(fn(next(keys)))
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


# ---- every warm figure of one shape and sparsity -----------------------------------------
@dataclasses.dataclass
class Row:
    """Every warm figure of one shape and sparsity, and the memory of its programs."""

    shape: tuple[int, ...]
    sparsity: float
    warm: dict[str, Warm]
    memory: dict[str, Memory] = dataclasses.field(default_factory=dict)
    # PyTorch's milliseconds a call, by anchor, where torch is installed (see anchors.py).
    anchors: dict[str, float] = dataclasses.field(default_factory=dict)

    def warm_ms(self, kind: str) -> float | None:
        return self.warm[kind].median_ms if kind in self.warm else None

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
    target_seconds: float,
    keys: Iterator[jax.Array],
    skip_naive: bool,
    progress: Callable[[str], None],
) -> Row:
    """Warm times; at DETAILED_SPARSITIES, one sort, the naive baseline and memory too."""
    progress(f"{fmt_shape(shape)} sparsity {sparsity}: warm timing")
    detailed = sparsity in DETAILED_SPARSITIES
    kinds = ["dense", "sparse"]
    if detailed:
        kinds.append("sort")
    if detailed and not skip_naive:
        kinds.append("naive")
    if math.prod(shape) <= SWEEP_MAX_SIZE:
        kinds += ["dense8", "sparse8", "traced8"]
    fns = {kind: jax.jit(make_fn(kind, shape, sparsity)) for kind in kinds}
    row = Row(shape, sparsity, time_warm(fns, repeats, target_seconds, keys))
    if detailed:
        row.memory = {
            kind: memory_of(make_fn(kind, shape, sparsity), next(keys))
            for kind in kinds
            if not kind.endswith("8")
        }
    if detailed and anchors.available():
        progress(f"{fmt_shape(shape)} sparsity {sparsity}: PyTorch anchors")
        row.anchors = anchors.time_anchors(shape, sparsity, repeats, target_seconds)
    return row
