"""Where the zeros go: an exact, uniformly random subset of each neuron's fan-in.

Each neuron of fan-in ``F`` needs a uniformly random set of exactly ``k`` zeros. The sampler
gets there in two stages, both vectorised over all neurons:

1. **A Bernoulli start.** Every cell is a zero with probability ``q / 256``, independently
   (one random byte per cell, compared with ``q``). Given how many zeros ``m`` a neuron got,
   its zero set is a uniformly random ``m``-subset: every ``m``-subset has the same probability
   ``(q/256)^m (1 - q/256)^(F-m)``.
2. **An exact correction.** If ``m > k`` the neuron removes ``m - k`` of its zeros, one at a
   time, each chosen uniformly among its remaining zeros; if ``m < k`` it adds ``k - m`` zeros,
   each uniform among its remaining kept cells. Removing a uniformly random element from a
   uniformly random ``m``-subset leaves a uniformly random ``(m - 1)``-subset (and adding one
   likewise), so after the correction the zero set is a uniformly random ``k``-subset, for
   every ``q``. Each choice is a rejection step: a position ``t`` uniform in ``[0, F)`` is
   taken if it is on the right side (a zero when removing, a kept cell when adding) and
   proposed again otherwise, which makes it uniform among the cells on that side.

The rate only decides the cost, never the distribution. :func:`rate_table` picks, for each
``k``, the ``q`` that minimises the proposals of the slowest neuron plus the cost of the start:
near ``k = F / 2`` the start does most of the work and a few dozen corrections remain (against
``F / 2`` sequential steps for a plain sequential sampler); at the extremes ``q`` is ``0`` or
``256``, the start is skipped, and the ``min(k, F - k)`` cells are placed one by one, which at
sparsity 0.9 means only the kept weights and their values are drawn, never a dense array.

The random numbers of a neuron depend only on the key, the neuron and the step index: the
bytes of the start come from one draw over the whole array, and the proposals of steps
``B b, ..., B b + B - 1`` from ``fold_in(key, b)``. A neuron that is done ignores later steps, so
its result does not depend on how many steps the slowest neuron of the array (or of a ``vmap``
batch) needs, and a traced ``k`` gives bit for bit the result of the concrete ``k``.

``t`` is ``bits % F`` for 32 random bits: a bias of at most ``F / 2**32`` in the probability of
any position, far below what any test or use can detect.
"""

import functools
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from sparseinit._layout import Layout

# Proposals unrolled per loop iteration: each iteration draws its random positions with one
# call, and a few steps amortise the loop's overhead without inflating the compiled program.
BLOCK = 8
# Each iteration is one dependent step of the compiled program; the proposals of one step are
# the BLOCK unrolled ones.

# Tail of the number of zeros of the Bernoulli start that the rate is chosen for, in standard
# deviations: the slowest of a few thousand neurons lies about this far out.
_TAIL = 3.5
# The cost of drawing the start (a random byte and a value per cell), in proposals per unit of
# fan-in: a proposal touches one cell of each neuron at random, the start streams through the
# whole array, and on CPU one costs about as much as a tenth of the other per fan-in position.
_START_COST = 0.1
# The rate q at which every cell of the start is a zero: the start is skipped and the kept
# cells are placed one by one (the few-kept path).
ALL_ZEROS = 256


def _harmonic(x: np.ndarray) -> np.ndarray:
    # H(x) = 1 + 1/2 + ... + 1/x, closely enough for choosing a rate.
    return np.log(np.maximum(x, 0) + 0.5) + 0.5772156649


@functools.lru_cache(maxsize=64)
def rate_table(fan_in: int) -> np.ndarray:
    """The Bernoulli rate ``q / 256`` of the start for each count ``k = 0, ..., fan_in``.

    For each ``k`` it minimises the expected proposals of a neuron ``_TAIL`` standard deviations
    out (removing ``z`` zeros down to ``k`` takes about ``F (H(z) - H(k))`` proposals, adding
    takes the same with the kept cells), plus the cost of the start unless ``q`` is 256 (all
    zeros: nothing to draw). Only the cost depends on this choice; any rate gives exact,
    uniform subsets. The table depends on the fan-in alone.

    Returns:
        ``int32[fan_in + 1]`` with entries in ``[0, 256]``.
    """
    f = float(fan_in)
    k = np.arange(fan_in + 1, dtype=np.float64)[:, None]
    q = np.arange(257, dtype=np.float64)[None, :]
    p = q / 256
    mean, sd = f * p, np.sqrt(f * p * (1 - p))
    high = np.minimum(mean + _TAIL * sd, f)
    low = np.maximum(mean - _TAIL * sd, 0)
    remove = np.where(high > k, f * (_harmonic(high) - _harmonic(k)), 0)
    add = np.where(low < k, f * (_harmonic(f - low) - _harmonic(f - k)), 0)
    cost = np.maximum(remove, add) + np.where(q < 256, _START_COST * f, 0)
    return cost.argmin(axis=1).astype(np.int32)


def start_rate(fan_in: int, zeros: int | jax.Array) -> int | jax.Array:
    """``q`` for ``zeros`` zeros per neuron: a Python int, or a traced int32 for a traced count."""
    table = rate_table(fan_in)
    if isinstance(zeros, int):
        return int(table[zeros])
    return jnp.asarray(table)[zeros]


def few_kept_bound(fan_in: int) -> int:
    """The most kept cells a neuron places one by one from an all-zero start (``q = 256``)."""
    table = rate_table(fan_in)
    counts = np.nonzero(table == ALL_ZEROS)[0]
    return int(fan_in - counts.min()) if counts.size else 0


def draw_exact_zeros(
    layout: Layout,
    zeros: int | jax.Array,
    start_key: jax.Array,
    step_key: jax.Array,
    place: Callable[[jax.Array], jax.Array],
    kept_values: Callable[[tuple[int, int]], jax.Array] | None,
) -> tuple[jax.Array, jax.Array]:
    """Exactly ``zeros`` zeros per neuron at uniformly random positions: the sampler.

    Chooses the path from the rate (the few-kept path for ``q = 256``, else the Bernoulli start;
    :func:`lax.cond` between them for a traced count) and runs the correction on the 2-D view.

    Args:
        layout: the neurons and fan-in of the array.
        zeros: zeros per neuron, a Python int or a traced int32.
        start_key: the key of the Bernoulli start.
        step_key: the key of the correction's proposals.
        place: constrains a view-shaped array to the view's sharding.
        kept_values: ``kept_values(shape)`` draws values of ``(fan_in, num_neurons)`` for the
            kept cells; ``None`` gives the mask instead of the weights.

    Returns:
        ``(result, steps)``: the weights (or the boolean mask, ``True`` where kept) of
        ``layout.shape``, and the loop iterations of the correction.
    """
    num_neurons, fan_in = layout.num_neurons, layout.fan_in
    neuron_dim = layout.neuron_dim
    rate = start_rate(fan_in, zeros)

    def few_kept() -> tuple[jax.Array, jax.Array, jax.Array, Any]:
        # Every cell starts as a zero and the kept cells are placed one by one, the n-th placed
        # cell of a neuron taking the n-th value drawn for it: no dense draw at all.
        bound = few_kept_bound(fan_in)
        remaining = jnp.broadcast_to(fan_in - zeros, (num_neurons,)).astype(jnp.int32)
        removing = jnp.ones((num_neurons,), bool)
        if kept_values is None:
            view = jnp.zeros(layout.view_shape, bool)
            return view, remaining, removing, lambda rows, placed: True
        # In the view's orientation and placement, so that no device holds them all.
        drawn = place(orient(kept_values((max(bound, 1), num_neurons)), neuron_dim))
        view = jnp.zeros(layout.view_shape, drawn.dtype)
        kept = lambda rows, placed: take(drawn, placed, neuron_dim)  # noqa: E731
        return view, remaining, removing, kept

    def start() -> tuple[jax.Array, jax.Array, jax.Array, Any]:
        # The Bernoulli start: a byte per cell below the rate makes a zero.
        if isinstance(rate, int) and rate == 0:
            member = jnp.zeros(layout.view_shape, bool)
        else:
            cells = start_bytes(start_key, fan_in, num_neurons)
            member = place(orient(cells < jnp.asarray(rate, jnp.uint32), neuron_dim))
        count = member.sum(axis=1 - neuron_dim, dtype=jnp.int32)
        removing = count > zeros
        remaining = jnp.abs(count - zeros)
        if kept_values is None:
            return jnp.logical_not(member), remaining, removing, lambda rows, placed: True
        dense = place(orient(kept_values((fan_in, num_neurons)), neuron_dim))
        view = jnp.where(member, jnp.zeros((), dense.dtype), dense)
        kept = lambda rows, placed: take(dense, rows, neuron_dim)  # noqa: E731
        return view, remaining, removing, kept

    def sample(begin: Callable[[], tuple]) -> tuple[jax.Array, jax.Array]:
        view, remaining, removing, kept = begin()
        view, steps = correct(
            step_key, place(view), remaining, removing, kept, neuron_dim=neuron_dim
        )
        return layout.from_view(view), steps

    if isinstance(rate, int):
        return sample(few_kept if rate == ALL_ZEROS else start)
    return lax.cond(rate == ALL_ZEROS, lambda: sample(few_kept), lambda: sample(start))


# ---- the steps ---------------------------------------------------------------------------


def _dims(neuron_dim: int) -> tuple[lax.GatherDimensionNumbers, lax.ScatterDimensionNumbers]:
    # One cell per neuron, with the neurons as explicit batching dimensions of the gather and
    # scatter: sharding the neurons partitions the steps without communication, and neither
    # orientation of the view needs a transpose.
    fan_dim = 1 - neuron_dim
    gather = lax.GatherDimensionNumbers(
        offset_dims=(),
        collapsed_slice_dims=(fan_dim,),
        start_index_map=(fan_dim,),
        operand_batching_dims=(neuron_dim,),
        start_indices_batching_dims=(0,),
    )
    scatter = lax.ScatterDimensionNumbers(
        update_window_dims=(),
        inserted_window_dims=(fan_dim,),
        scatter_dims_to_operand_dims=(fan_dim,),
        operand_batching_dims=(neuron_dim,),
        scatter_indices_batching_dims=(0,),
    )
    return gather, scatter


def take(view: jax.Array, rows: jax.Array, neuron_dim: int) -> jax.Array:
    gather, _ = _dims(neuron_dim)
    slice_sizes = (1, 1)
    return lax.gather(
        view, rows[:, None], gather, slice_sizes, mode=lax.GatherScatterMode.PROMISE_IN_BOUNDS
    )


def _put(view: jax.Array, rows: jax.Array, values: jax.Array, neuron_dim: int) -> jax.Array:
    _, scatter = _dims(neuron_dim)
    return lax.scatter(
        view,
        rows[:, None],
        values.astype(view.dtype),
        scatter,
        unique_indices=True,
        mode=lax.GatherScatterMode.PROMISE_IN_BOUNDS,
    )


def correct(
    key: jax.Array,
    view: jax.Array,
    remaining: jax.Array,
    removing: jax.Array,
    kept_value: Callable[[jax.Array, jax.Array], jax.Array],
    *,
    neuron_dim: int,
) -> tuple[jax.Array, jax.Array]:
    """Runs the correction: ``remaining`` uniform removals (or additions) of zeros per neuron.

    Args:
        key: a typed key for the proposals.
        view: the 2-D view, zero (or ``False``) exactly at the current zeros.
        remaining: ``int32[N]``, zeros to remove or add per neuron.
        removing: ``bool[N]``, whether the neuron removes zeros (else it adds them).
        kept_value: ``kept_value(rows, placed)`` gives the non-zero values written where a
            zero becomes a kept cell, from the chosen rows and the number already placed.
        neuron_dim: which dimension of ``view`` indexes neurons.

    Returns:
        The corrected view and the number of loop iterations run (each ``BLOCK`` proposals).
    """
    fan_in = view.shape[1 - neuron_dim]
    total = remaining
    zero = jnp.zeros((), view.dtype)

    def step(carry: tuple[jax.Array, jax.Array, jax.Array]) -> tuple:
        block, view, remaining = carry
        bits = jax.random.bits(
            jax.random.fold_in(key, block), (BLOCK, remaining.shape[0]), jnp.uint32
        )
        for u in range(BLOCK):
            rows = (bits[u] % jnp.uint32(fan_in)).astype(jnp.int32)
            current = take(view, rows, neuron_dim)
            chosen = (remaining > 0) & ((current == 0) == removing)
            new = jnp.where(removing, kept_value(rows, total - remaining), zero)
            view = _put(view, rows, jnp.where(chosen, new, current), neuron_dim)
            remaining = remaining - chosen.astype(remaining.dtype)
        return block + 1, view, remaining

    def busy(carry: tuple[jax.Array, jax.Array, jax.Array]) -> jax.Array:
        return jnp.any(carry[2] > 0)

    blocks, view, _ = lax.while_loop(busy, step, (jnp.int32(0), view, remaining))
    return view, blocks


def start_bytes(key: jax.Array, layout_fan_in: int, num_neurons: int) -> jax.Array:
    """One random byte per cell, as ``uint32[fan_in, N]``: four from each random word."""
    words = jax.random.bits(key, (math.ceil(layout_fan_in / 4), num_neurons), jnp.uint32)
    # Row 4 w + i is byte i of word row w: a block of rows comes from a block of words, so a
    # sharded fan-in axis keeps every byte on the device of its word.
    parts = [(words >> jnp.uint32(8 * i)) & jnp.uint32(255) for i in range(4)]
    interleaved = jnp.stack(parts, axis=1).reshape(-1, num_neurons)
    return interleaved[:layout_fan_in]


def orient(x: jax.Array, neuron_dim: int) -> jax.Array:
    """A ``(fan_in, N)`` array in the view's orientation."""
    return x if neuron_dim == 1 else x.T
