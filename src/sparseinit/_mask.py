"""Where the zeros go: an exact, uniformly random subset of each neuron's fan-in.

Each neuron of fan-in ``F`` needs a uniformly random set of exactly ``k`` zeros. The sampler
gets there in two stages, both vectorised over all neurons:

1. **A start.** Every cell is a zero with probability ``q / 256``, independently (one random
   byte per cell, compared with ``q``). Given how many zeros ``m`` a neuron got, its zero set
   is a uniformly random ``m``-subset: every ``m``-subset has the same probability
   ``(q/256)^m (1 - q/256)^(F-m)``. With ``q = 0`` (no zeros) or ``q = 256`` (all zeros) the
   start is a constant and no byte is drawn.
2. **An exact correction.** If ``m > k`` the neuron removes ``m - k`` of its zeros, one at a
   time, each chosen uniformly among its remaining zeros; if ``m < k`` it adds ``k - m`` zeros,
   each uniform among its remaining kept cells. Removing a uniformly random element from a
   uniformly random ``m``-subset leaves a uniformly random ``(m - 1)``-subset (and adding one
   likewise), so after the correction the zero set is a uniformly random ``k``-subset, for
   every ``q``. Each choice is a rejection step: a position ``t`` uniform in ``[0, F)`` is
   taken if it is on the right side (a zero when removing, a kept cell when adding) and
   proposed again otherwise, which makes it uniform among the cells on that side.

**The rate is part of the definition of the output.** Any ``q`` gives an exact uniform subset,
but which subset a given key gives depends on ``q``, so :func:`start_rate` is a fixed rule, pinned
by the golden test: where the smaller side (``min(k, F - k)``) is at most an eighth of ``F``,
the start is skipped (``q = 0`` below half, ``q = 256`` above) and the correction places those
few cells; elsewhere ``q = round(256 k / F)``, computed in exact integer arithmetic so that a
traced ``k`` gets the rate of the concrete one. Changing the rule changes masks: that is a
change of outputs, to be said in the changelog. How many proposals a round takes
(:func:`round_chunks`) changes only the cost, never the output.

The correction is defined one proposal at a time, but it runs in **rounds** (:func:`correct`):
a round takes a batch of consecutive proposals of every neuron and applies them all at once,
with exactly the result of taking them in order. A round is sized so that nearly every kernel
is done after one.

The random numbers of a neuron depend only on the key, the neuron and the proposal's index: the
bytes of the start come from one draw over the whole array, and proposal ``i`` of neuron ``n``
from the hash of the counter pair ``(i, n)`` under the proposals' key (for a key type other
than threefry, proposals ``8 c, ..., 8 c + 7`` from ``fold_in(key, c)``). A neuron that is
done ignores later proposals, so its result depends neither on how rounds group the proposals
nor on how many the slowest neuron of the array (or of a ``vmap`` batch) needs, and a traced
``k`` gives bit for bit the result of the concrete ``k``.

``t`` is ``bits % F`` for 32 random bits: a bias of at most ``F / 2**32`` in the probability of
any position, far below what any test or use can detect.
"""

import math
import statistics
from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax import lax

from sparseinit import _random
from sparseinit._layout import Layout

# A round takes a whole number of chunks of this many proposals per neuron (for a key type
# other than threefry, the proposals of a chunk come from one ``fold_in`` of the key).
CHUNK = 8
# The rate at which every cell of the start is a zero.
ALL_ZEROS = 256
# The largest fan-in and number of neurons the sampler indexes: positions, counts and proposal
# numbers are 32-bit integers.
LIMIT = 2**31 - 1


# ---- the plan: the rate of the start and the size of a round ----------------------------


def start_rate(fan_in: int, zeros: int | jax.Array) -> int | jax.Array:
    """The start's rate ``q`` (``q / 256`` per cell) for ``zeros`` zeros per neuron.

    ``0`` or ``256`` where the smaller side is at most ``fan_in // 8`` cells, else
    ``round(256 * zeros / fan_in)`` (half up), in ``[32, 224]``. A Python int for a concrete
    count, a traced int32 for a traced one; the two agree exactly.
    """
    if isinstance(zeros, int):
        if min(zeros, fan_in - zeros) <= fan_in // 8:
            return 0 if zeros <= fan_in - zeros else ALL_ZEROS
        return ((512 * zeros) // fan_in + 1) // 2
    k = zeros.astype(jnp.uint32)
    f = jnp.uint32(fan_in)
    # floor(512 k / F) by binary long division: the remainder stays below F < 2**31, so no step
    # overflows 32 bits, where 512 k would.
    q, r = jnp.uint32(0), k
    for _ in range(9):
        r = r + r
        over = r >= f
        q = q + q + over.astype(jnp.uint32)
        r = jnp.where(over, r - f, r)
    middle = ((q + 1) // 2).astype(jnp.int32)
    few = jnp.minimum(zeros, fan_in - zeros) <= fan_in // 8
    ends = jnp.where(zeros <= fan_in - zeros, 0, ALL_ZEROS)
    return jnp.where(few, ends, middle)


def round_chunks(fan_in: int, num_neurons: int, zeros: int | None) -> int:
    """Chunks of ``CHUNK`` proposals per round for ``zeros`` zeros (``None``: a traced count).

    Sized so that about one kernel in twenty needs a second round: the slowest of
    ``num_neurons`` neurons lies about ``z`` standard deviations out, both in how far its start
    is from ``zeros`` and in how many proposals its corrections take. A traced count is sized
    for half the fan-in, the middle of the range; other counts may take a few rounds. Only the
    cost depends on this.
    """
    k = fan_in // 2 if zeros is None else zeros
    q = start_rate(fan_in, k)
    assert isinstance(q, int)
    z = statistics.NormalDist().inv_cdf(1 - 0.05 / max(num_neurons, 1))
    if q in (0, ALL_ZEROS):
        # The start is exact: the correction places the few cells of the smaller side, drawing
        # from the larger side (the zeros it removes, or the kept cells it zeros), which never
        # shrinks below `max(k, fan_in - k)` cells.
        distance = float(min(k, fan_in - k))
        side = max(k, fan_in - k)
    else:
        # The start's count lies within `z` standard deviations of its mean, and the side the
        # correction draws from keeps at least `min(k, fan_in - k)` cells.
        p = q / ALL_ZEROS
        distance = abs(fan_in * p - k) + z * math.sqrt(fan_in * p * (1 - p))
        side = max(min(k, fan_in - k), 1)
    # Each proposal hits the right side with probability at least `hit`: geometric trials.
    hit = side / fan_in
    proposals = distance / hit + z * math.sqrt(distance * (1 - hit)) / hit
    return max(1, math.ceil(proposals / CHUNK))


# ---- the sampler -------------------------------------------------------------------------


def draw_support(
    layout: Layout,
    zeros: int | jax.Array,
    start_key: jax.Array,
    step_key: jax.Array,
    place: Callable[[jax.Array], jax.Array],
    *,
    fan_in_shards: int = 1,
) -> jax.Array:
    """Exactly ``zeros`` zeros per neuron at uniformly random positions: the boolean support.

    Args:
        layout: the neurons and fan-in of the array.
        zeros: zeros per neuron, a Python int or a traced int32.
        start_key: the key of the start's bytes.
        step_key: the key of the correction's proposals.
        place: constrains a view-shaped array to the view's sharding.
        fan_in_shards: how many devices share the fan-in of each neuron. Each holds every
            proposal of a round, so rounds are kept to half a shard's rows.

    Returns:
        A boolean array of ``layout.shape``, ``True`` where a weight is kept.
    """
    num_neurons, fan_in = layout.num_neurons, layout.fan_in
    rate = start_rate(fan_in, zeros)
    if isinstance(rate, int) and rate in (0, ALL_ZEROS):
        # A constant start: nothing to draw, and its count is known.
        view = jnp.full(layout.view_shape, rate == 0)
        have = jnp.full((num_neurons,), 0 if rate == 0 else fan_in, jnp.int32)
    else:
        cells = start_bytes(start_key, fan_in, num_neurons)
        # A traced rate may still be a constant to XLA (a sparsity made inside the caller's
        # jit); the barrier keeps XLA from evaluating the start at compile time.
        below = rate if isinstance(rate, int) else lax.optimization_barrier(rate)
        kept = cells >= jnp.asarray(below).astype(jnp.uint32)
        view = orient(kept, layout.neuron_dim)
        have = (~view).sum(axis=1 - layout.neuron_dim, dtype=jnp.int32)
    chunks = round_chunks(fan_in, num_neurons, zeros if isinstance(zeros, int) else None)
    if fan_in_shards > 1:
        chunks = max(1, min(chunks, fan_in // (2 * CHUNK * fan_in_shards)))
    if isinstance(zeros, int) and rate in (0, ALL_ZEROS) and min(zeros, fan_in - zeros) == 0:
        support = place(view)  # nothing to correct: every cell is kept, or none is
    else:
        support = correct(step_key, place(view), zeros, have, layout.neuron_dim, chunks)
    return layout.from_view(support)


# ---- the rounds --------------------------------------------------------------------------


def _dims(neuron_dim: int) -> tuple[lax.GatherDimensionNumbers, lax.ScatterDimensionNumbers]:
    # Cells of a (fan_in, N) or (N, fan_in) array picked by a (P, N) array of fan-in positions,
    # with the neurons as explicit batching dimensions of the gather and scatter: sharding the
    # neurons partitions the rounds without communication, and neither orientation of the view
    # needs a transpose.
    fan_dim = 1 - neuron_dim
    gather = lax.GatherDimensionNumbers(
        offset_dims=(),
        collapsed_slice_dims=(fan_dim,),
        start_index_map=(fan_dim,),
        operand_batching_dims=(neuron_dim,),
        start_indices_batching_dims=(1,),
    )
    scatter = lax.ScatterDimensionNumbers(
        update_window_dims=(),
        inserted_window_dims=(fan_dim,),
        scatter_dims_to_operand_dims=(fan_dim,),
        operand_batching_dims=(neuron_dim,),
        scatter_indices_batching_dims=(1,),
    )
    return gather, scatter


_IN_BOUNDS = lax.GatherScatterMode.PROMISE_IN_BOUNDS


def _exclusive_count(flags: jax.Array) -> tuple[jax.Array, jax.Array]:
    # For each proposal, how many earlier proposals of its neuron are flagged: a running count
    # within each chunk plus one over the chunks' totals, which costs far less than one running
    # count over the whole round (a cumulative sum is quadratic in its length on some backends).
    # Also each neuron's number of flagged proposals.
    chunked = flags.reshape(-1, CHUNK, flags.shape[1]).astype(jnp.int32)
    within = jnp.cumsum(chunked, axis=1)
    totals = within[:, -1]
    through_chunks = jnp.cumsum(totals, axis=0)
    before = within - chunked + (through_chunks - totals)[:, None]
    return before.reshape(flags.shape), through_chunks[-1]


def _proposal_words(key: jax.Array, first_chunk: jax.Array, chunks: int, n: int) -> jax.Array:
    # The random words of a round's proposals, uint32[chunks * CHUNK, n]: of the counter pairs
    # (proposal, neuron) under a threefry key, else of one fold_in per chunk.
    count = chunks * CHUNK
    if _random.applies(key):
        shape = (count, n)
        first = (first_chunk * CHUNK).astype(jnp.uint32)
        proposal = lax.broadcasted_iota(jnp.uint32, shape, 0) + first
        return _random.words(key, proposal, lax.broadcasted_iota(jnp.uint32, shape, 1))

    def chunk_words(chunk: jax.Array) -> jax.Array:
        return _random.bits(jax.random.fold_in(key, chunk), (CHUNK, n))

    words = jax.vmap(chunk_words)(first_chunk + jnp.arange(chunks, dtype=jnp.int32))
    return words.reshape(count, n)


def correct(
    key: jax.Array,
    view: jax.Array,
    zeros: int | jax.Array,
    have: jax.Array,
    neuron_dim: int,
    chunks: int,
) -> jax.Array:
    """Runs the correction: uniform removals (or additions) of zeros until there are ``zeros``.

    The proposals form one sequence per neuron (see the module's docstring for their random
    words). Taken one at a time, a proposal is accepted when it lands on the right side of the
    current zero set and the neuron still needs one; this is the process the exactness argument
    is about. A round applies ``chunks * CHUNK`` consecutive proposals at once with the same
    result: a proposal is accepted in sequence exactly when its cell was on the right side at
    the start of the round, no earlier proposal of the round hit that cell (it would have
    flipped it), and fewer than the neuron's remaining need of earlier ones were accepted.
    Rounds repeat until every neuron is done.

    Args:
        key: a typed key for the proposals.
        view: the 2-D boolean view, ``False`` exactly at the current zeros.
        zeros: the zeros each neuron ends with, a scalar.
        have: ``int32[N]``, the zeros each neuron of ``view`` has.
        neuron_dim: which dimension of ``view`` indexes neurons.
        chunks: chunks of ``CHUNK`` proposals per round.

    Returns:
        The corrected view.
    """
    fan_dim = 1 - neuron_dim
    fan_in = view.shape[fan_dim]
    num_neurons = view.shape[neuron_dim]
    count = chunks * CHUNK
    # The claim table holds, for every cell on the right side, the number (from 1) of the
    # round's first proposal that hit it, or the dtype's largest value if none did; the other
    # cells hold 0, which no proposal's number lowers. Unsigned, so that a byte serves rounds
    # of up to 254 proposals.
    claim_dtype = next(d for d in (jnp.uint8, jnp.uint16, jnp.uint32) if count < jnp.iinfo(d).max)
    unclaimed = jnp.asarray(jnp.iinfo(claim_dtype).max, claim_dtype)
    gather, scatter = _dims(neuron_dim)

    def per_neuron(x: jax.Array) -> jax.Array:
        return jnp.expand_dims(x, fan_dim)

    def round_(carry: tuple[jax.Array, jax.Array, jax.Array]) -> tuple:
        first_chunk, view, now = carry
        is_zero = ~view
        removing = now > zeros
        remaining = jnp.abs(now - zeros)
        words = _proposal_words(key, first_chunk, chunks, num_neurons)
        rows = (words % jnp.uint32(fan_in)).astype(jnp.int32)
        number = lax.broadcasted_iota(claim_dtype, rows.shape, 0) + jnp.asarray(1, claim_dtype)
        on_side = is_zero == per_neuron(removing)
        claim = jnp.where(on_side, unclaimed, jnp.asarray(0, claim_dtype))
        claim = lax.scatter_min(claim, rows[..., None], number, scatter, mode=_IN_BOUNDS)
        first = lax.gather(claim, rows[..., None], gather, (1, 1), mode=_IN_BOUNDS)
        eligible = first == number
        before, hits = _exclusive_count(eligible)
        # The accepted proposals are a neuron's first `remaining` eligible ones, if it has that
        # many. Flip every cell whose first proposal is accepted: those up to the last accepted.
        accepted = eligible & (before < remaining)
        last = jnp.max(jnp.where(accepted, number, jnp.asarray(0, claim_dtype)), axis=0)
        view = view ^ ((claim != 0) & (claim <= per_neuron(last)))
        moved = jnp.minimum(hits, remaining)
        return first_chunk + chunks, view, jnp.where(removing, now - moved, now + moved)

    def busy(carry: tuple[jax.Array, jax.Array, jax.Array]) -> jax.Array:
        return jnp.any(carry[2] != zeros)

    return lax.while_loop(busy, round_, (jnp.int32(0), view, have))[1]


def start_bytes(key: jax.Array, fan_in: int, num_neurons: int) -> jax.Array:
    """One random byte per cell, as ``uint32[fan_in, N]``: four from each random word."""
    words = _random.written_out(_random.bits(key, (math.ceil(fan_in / 4), num_neurons)))
    # Row 4 w + i is byte i of word row w: a block of rows comes from a block of words, so a
    # sharded fan-in axis keeps every byte on the device of its word. The words are written out
    # once; repeating each word row and shifting by the row's byte is one elementwise pass.
    rows = jnp.repeat(words, 4, axis=0)[:fan_in]
    byte = lax.broadcasted_iota(jnp.uint32, (fan_in, 1), 0) % jnp.uint32(4)
    return (rows >> (byte * jnp.uint32(8))) & jnp.uint32(255)


def orient(x: jax.Array, neuron_dim: int) -> jax.Array:
    """A ``(fan_in, N)`` array in the view's orientation."""
    return x if neuron_dim == 1 else x.T
