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


def _step(
    row: jax.Array,
    t: jax.Array,
    j: jax.Array,
    active: jax.Array,
    fill: jax.Array,
    marks: bool | jax.Array,
) -> jax.Array:
    # One Floyd step for one row: choose t, or j if t is already chosen.
    current = row[t]
    taken = (current != 0) == marks
    position = jnp.where(active & taken, j, t)
    return row.at[position].set(jnp.where(active, fill, current), unique_indices=True)


def choose(
    key: jax.Array,
    rows: jax.Array,
    count: int | jax.Array,
    marks_nonzero: bool | jax.Array,
    fill: Callable[[jax.Array], jax.Array],
    *,
    max_count: int,
) -> jax.Array:
    """Marks ``count`` distinct, uniformly random cells in every row of ``rows``.

    Args:
        key: a typed key; the positions depend only on it, ``count`` and the row shape.
        rows: ``(N, F)`` array whose cells are all unmarked: zero where ``marks_nonzero``,
            non-zero otherwise.
        count: cells to mark per row, static or traced, at most ``max_count``.
        marks_nonzero: whether a marked cell is non-zero (kept weights are being placed) or
            zero (zeros are being placed).
        fill: ``fill(block)`` gives the ``(BLOCK, N)`` values written by the steps of ``block``;
            each must be marked (non-zero iff ``marks_nonzero``).
        max_count: a static bound on ``count``; the loop runs ``ceil(max_count / BLOCK)``
            blocks.

    Returns:
        ``rows`` with the chosen cells overwritten by ``fill``'s values.
    """
    num_rows, fan_in = rows.shape
    if max_count == 0 or num_rows == 0 or fan_in == 0:
        return rows
    first = fan_in - count

    def block(b: jax.Array, rows: jax.Array) -> jax.Array:
        bits = jax.random.bits(jax.random.fold_in(key, b), (BLOCK, num_rows), jnp.uint32)
        values = fill(b)
        for u in range(BLOCK):
            i = b * BLOCK + u
            active = i < count
            j = jnp.minimum(first + i, fan_in - 1).astype(jnp.int32)
            t = (bits[u] % (j + 1).astype(jnp.uint32)).astype(jnp.int32)
            rows = _vstep(rows, t, j, active, values[u], marks_nonzero)
        return rows

    return lax.fori_loop(0, -(-max_count // BLOCK), block, rows)


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
