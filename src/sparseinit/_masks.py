"""Where the zeros go: an exact, uniformly random subset of each neuron's fan-in.

The sampler is Robert Floyd's algorithm for a random ``c``-subset of ``{0, ..., F-1}``: for
``j = F-c, ..., F-1`` draw ``t`` uniform in ``[0, j]`` and choose ``t``, or ``j`` if ``t`` was
already chosen. Every ``c``-subset comes out with probability ``1 / binom(F, c)``, with ``c``
sequential steps and no sort. The steps run for all neurons at once (one vectorised gather and
scatter per step), so a layer needs ``c`` steps whatever its width, and each neuron draws from
its own random numbers, independently of every other neuron.

Two details keep it cheap and exact:

* Each neuron samples the smaller of its two sets, ``c = min(k, F - k)`` for ``k`` zeros, and
  the choice is marked in place in the array being built: with ``c`` kept weights they are
  written as drawn (no dense draw at all); with ``c`` zeros they overwrite dense values. A
  cell is *chosen* when ``(cell != 0) == marks_nonzero``, which is why kept values are never 0.
* Random numbers come in blocks of ``BLOCK`` steps, block ``b`` from ``fold_in(key, b)``, so a
  step's numbers depend only on its index: a traced count that runs the static maximum of
  steps (with the surplus steps inactive) gives exactly the result of the concrete count.

``t`` is ``bits % (j + 1)`` for 32 random bits: a bias of at most ``F / 2**32`` in the
probability of any position, far below what any test or use can detect.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax import lax

# Steps unrolled per loop iteration: amortises the loop's overhead and the random-bit calls
# (measured on CPU: 8 is within a few percent of 32 and compiles in half the time).
BLOCK = 8


def _floyd(
    current: jax.Array,
    t: jax.Array,
    j: jax.Array,
    active: jax.Array,
    fill: jax.Array,
    marks: bool | jax.Array,
) -> tuple[jax.Array, jax.Array]:
    # Floyd's rule: choose t, or j if t is already chosen. An inactive step rewrites the
    # current value at t, a no-op.
    taken = (current != 0) == marks
    position = jnp.where(active & taken, j, t)
    return position, jnp.where(active, fill, current)


def _step(
    row: jax.Array,
    t: jax.Array,
    j: jax.Array,
    active: jax.Array,
    fill: jax.Array,
    marks: bool | jax.Array,
) -> jax.Array:
    # One Floyd step for one row.
    current = row[t]
    position, value = _floyd(current, t, j, active, fill, marks)
    return row.at[position].set(value, unique_indices=True)


_COLUMN_GATHER = lax.GatherDimensionNumbers(
    offset_dims=(),
    collapsed_slice_dims=(0,),
    start_index_map=(0,),
    operand_batching_dims=(1,),
    start_indices_batching_dims=(0,),
)
_COLUMN_SCATTER = lax.ScatterDimensionNumbers(
    update_window_dims=(),
    inserted_window_dims=(0,),
    scatter_dims_to_operand_dims=(0,),
    operand_batching_dims=(1,),
    scatter_indices_batching_dims=(0,),
)


def _step_columns(
    view: jax.Array,
    t: jax.Array,
    j: jax.Array,
    active: jax.Array,
    fill: jax.Array,
    marks: bool | jax.Array,
) -> jax.Array:
    # The same step for every column of a (F, N) view at once. The columns are explicit
    # batching dimensions of the gather and scatter, so that sharding the neurons partitions
    # them without communication, and no transpose of the view is needed.
    current = lax.gather(
        view, t[:, None], _COLUMN_GATHER, (1, 1), mode=lax.GatherScatterMode.PROMISE_IN_BOUNDS
    )
    position, value = _floyd(current, t, j, active, fill, marks)
    return lax.scatter(
        view,
        position[:, None],
        value.astype(view.dtype),
        _COLUMN_SCATTER,
        unique_indices=True,
        mode=lax.GatherScatterMode.PROMISE_IN_BOUNDS,
    )


def choose(
    key: jax.Array,
    view: jax.Array,
    count: int | jax.Array,
    marks_nonzero: bool | jax.Array,
    fill: Callable[[jax.Array], jax.Array],
    *,
    max_count: int,
    neuron_dim: int = 0,
) -> jax.Array:
    """Marks ``count`` distinct, uniformly random cells of every neuron of ``view``.

    Args:
        key: a typed key; the positions depend only on it, ``count`` and the view's shape.
        view: ``(N, F)`` (``neuron_dim=0``) or ``(F, N)`` (``neuron_dim=1``) array whose cells
            are all unmarked: zero where ``marks_nonzero``, non-zero otherwise. The chosen
            positions are the same in either orientation.
        count: cells to mark per row, static or traced, at most ``max_count``.
        marks_nonzero: whether a marked cell is non-zero (kept weights are being placed) or
            zero (zeros are being placed).
        fill: ``fill(block)`` gives the ``(BLOCK, N)`` values written by the steps of ``block``;
            each must be marked (non-zero iff ``marks_nonzero``).
        max_count: a static bound on ``count``; the loop runs ``ceil(max_count / BLOCK)``
            blocks.
        neuron_dim: which dimension of ``view`` indexes neurons.

    Returns:
        ``view`` with the chosen cells overwritten by ``fill``'s values.
    """
    num_rows = view.shape[neuron_dim]
    fan_in = view.shape[1 - neuron_dim]
    if max_count == 0 or num_rows == 0 or fan_in == 0:
        return view
    first = fan_in - count
    step = _vstep if neuron_dim == 0 else _step_columns

    def block(b: jax.Array, view: jax.Array) -> jax.Array:
        bits = jax.random.bits(jax.random.fold_in(key, b), (BLOCK, num_rows), jnp.uint32)
        values = fill(b)
        for u in range(BLOCK):
            i = b * BLOCK + u
            active = i < count
            j = jnp.minimum(first + i, fan_in - 1).astype(jnp.int32)
            t = (bits[u] % (j + 1).astype(jnp.uint32)).astype(jnp.int32)
            view = step(view, t, j, active, values[u], marks_nonzero)
        return view

    return lax.fori_loop(0, -(-max_count // BLOCK), block, view)


def _vstep(
    rows: jax.Array,
    t: jax.Array,
    j: jax.Array,
    active: jax.Array,
    fill: jax.Array,
    marks_nonzero: bool | jax.Array,
) -> jax.Array:
    return jax.vmap(_step, in_axes=(0, 0, None, None, 0, None))(
        rows, t, j, active, fill, marks_nonzero
    )
