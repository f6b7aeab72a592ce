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
near ``k = F / 2`` the start does most of the work and a few dozen corrections remain; at the
extremes ``q`` is ``0`` or ``256``, the start is skipped, and the ``min(k, F - k)`` cells are
placed by the correction alone: at sparsity 0.9 only the positions of the kept cells are
drawn, not a random byte per cell.

Both paths give the support only. The weights are then one value per cell, drawn over the whole
array, kept where the support is: which cells are kept never depends on the values.

The correction is defined one proposal at a time, but it runs in **rounds** (:func:`correct`):
a round takes a batch of consecutive proposals of every neuron and applies them all at once,
with exactly the result of taking them in order. A round is sized so that nearly every kernel
is done after one, so the whole sampler is a handful of dependent steps whatever ``k`` and
``F`` are.

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

import functools
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from sparseinit import _random
from sparseinit._layout import Layout
from sparseinit._values import random_words

# A round takes a whole number of chunks of this many proposals per neuron (for a key type
# other than threefry, the proposals of a chunk come from one ``fold_in`` of the key).
CHUNK = 8
# Tail of the number of zeros of the Bernoulli start that the rate is chosen for, in standard
# deviations: the slowest of a few thousand neurons lies about this far out.
_TAIL = 3.5
# The cost of drawing the start (a random byte per cell and the comparison), in proposals per
# unit of fan-in: on CPU a proposal (its random word, the claim and the count of a round) costs
# about ten times what the start costs per fan-in position.
_START_COST = 0.1
# The rate q at which every cell of the start is a zero: the start is skipped and the kept
# cells are placed by the correction (the few-kept path).
ALL_ZEROS = 256
# A traced count's rounds are this many times smaller than the largest need of its path, so
# that a sweep pays for about the proposals its counts need (see `round_chunks`).
_TRACED_ROUND_DIVISOR = 3


def _harmonic(x: np.ndarray) -> np.ndarray:
    # H(x) = 1 + 1/2 + ... + 1/x, closely enough for choosing a rate.
    return np.log(np.maximum(x, 0) + 0.5) + 0.5772156649


def _start_range(fan_in: int, q: np.ndarray, tail: float) -> tuple[np.ndarray, np.ndarray]:
    # The most and the fewest zeros of a start at rate q / 256 that lies within `tail` standard
    # deviations of its mean.
    f = float(fan_in)
    p = q / 256
    mean, sd = f * p, np.sqrt(f * p * (1 - p))
    return np.minimum(mean + tail * sd, f), np.maximum(mean - tail * sd, 0)


def _per_side(
    fan_in: int,
    k: np.ndarray,
    q: np.ndarray,
    tail: float,
    trials: Callable[[np.ndarray, np.ndarray], np.ndarray],
) -> np.ndarray:
    # `trials(start, end)`, a figure of the proposals that take a neuron from `start` cells on
    # the right side down to `end`, for a neuron whose start lies `tail` standard deviations
    # out, for counts k and rates q / 256 that broadcast together: removing zeros from a start
    # above k, or adding them (counted on the kept cells) to one below, whichever is larger.
    f = float(fan_in)
    high, low = _start_range(fan_in, q, tail)
    remove = np.where(high > k, trials(high, k), 0)
    add = np.where(low < k, trials(f - low, f - k), 0)
    return np.maximum(remove, add)


# Removing zeros from z down to k takes F (H(z) - H(k)) proposals on average: at m zeros a
# proposal succeeds with probability m / F, a geometric number of trials with variance
# F (F - m) / m^2, which sums to about F^2 (1/k - 1/z) - F log(z / k). The rate table needs only
# the expected number, over every (k, q) pair: its logarithms are taken over k and q separately.


def _expected_proposals(fan_in: int, k: np.ndarray, q: np.ndarray, tail: float) -> np.ndarray:
    # The expected proposals (see above).
    f = float(fan_in)
    return _per_side(fan_in, k, q, tail, lambda start, end: f * (_harmonic(start) - _harmonic(end)))


def _proposal_variance(fan_in: int, k: np.ndarray, q: np.ndarray, tail: float) -> np.ndarray:
    # The variance of the number of proposals (see above).
    f = float(fan_in)

    def variance(start: np.ndarray, end: np.ndarray) -> np.ndarray:
        a = np.maximum(end, 0.5)
        top = np.maximum(start, a)
        return np.maximum(f * f * (1 / a - 1 / top) - f * np.log(top / a), 0)

    return _per_side(fan_in, k, q, tail, variance)


@functools.lru_cache(maxsize=64)
def rate_table(fan_in: int) -> np.ndarray:
    """The Bernoulli rate ``q / 256`` of the start for each count ``k = 0, ..., fan_in``.

    For each ``k`` it minimises the expected proposals of a neuron ``_TAIL`` standard deviations
    out, plus the cost of the start unless ``q`` is 0 or 256 (no zeros or all zeros: nothing to
    draw). Only the cost depends on this choice; any rate gives exact, uniform subsets. The
    table depends on the fan-in alone.

    Returns:
        ``int32[fan_in + 1]`` with entries in ``[0, 256]``.
    """
    k = np.arange(fan_in + 1, dtype=np.float64)[:, None]
    q = np.arange(257, dtype=np.float64)[None, :]
    expected = _expected_proposals(fan_in, k, q, _TAIL)
    cost = expected + np.where((q > 0) & (q < ALL_ZEROS), _START_COST * fan_in, 0)
    return cost.argmin(axis=1).astype(np.int32)


def _normal_quantile(tail: float) -> float:
    # The z with P(X > z) = tail for a standard normal X, by bisection.
    low, high = 0.0, 40.0
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (mid, high) if 0.5 * math.erfc(mid / math.sqrt(2)) > tail else (low, mid)
    return high


@functools.lru_cache(maxsize=64)
def _chunk_table(fan_in: int, num_neurons: int) -> np.ndarray:
    # Chunks per round for each count, sized so that about one kernel in ten needs a second
    # round: the slowest of `num_neurons` neurons lies about `z` standard deviations out, where
    # its start's count and its own trials both vary (added as independent deviations).
    z = _normal_quantile(0.05 / num_neurons)
    k = np.arange(fan_in + 1, dtype=np.float64)
    q = rate_table(fan_in).astype(np.float64)
    center = _expected_proposals(fan_in, k, q, 0.0)
    edge = _expected_proposals(fan_in, k, q, z)
    variance = _proposal_variance(fan_in, k, q, z)
    proposals = center + np.sqrt((edge - center) ** 2 + z * z * variance)
    return np.maximum(np.ceil(proposals / CHUNK), 1).astype(np.int32)


def round_chunks(fan_in: int, num_neurons: int, zeros: int | jax.Array, few_kept: bool) -> int:
    """Chunks of ``CHUNK`` proposals per round of the correction, a static number.

    For a concrete count it is sized for that count, so that nearly every kernel needs one
    round. A traced count's size must serve every count that takes the same path
    (``few_kept`` or the Bernoulli start): it is a third of the largest need on the path, so
    that a sweep over sparsities pays for about the proposals each count needs, usually in two
    or three rounds, rather than for the largest need at every count. The size changes only the
    cost: a neuron's proposals form the same sequence however rounds group them.
    """
    table = _chunk_table(fan_in, num_neurons)
    if isinstance(zeros, int):
        return int(table[zeros])
    path = (rate_table(fan_in) == ALL_ZEROS) == few_kept
    if not path.any():
        return 1
    # Every entry of the table is at least 1, and so is a third of it rounded up.
    return math.ceil(int(table[path].max()) / _TRACED_ROUND_DIVISOR)


def start_rate(fan_in: int, zeros: int | jax.Array) -> int | jax.Array:
    """``q`` for ``zeros`` zeros per neuron: a Python int, or a traced int32 for a traced count."""
    table = rate_table(fan_in)
    if isinstance(zeros, int):
        return int(table[zeros])
    return jnp.asarray(table)[zeros]


def draw_exact_zeros(
    layout: Layout,
    zeros: int | jax.Array,
    start_key: jax.Array,
    step_key: jax.Array,
    place: Callable[[jax.Array], jax.Array],
    *,
    fan_in_shards: int = 1,
    flat: bool = False,
) -> tuple[jax.Array, jax.Array]:
    """Exactly ``zeros`` zeros per neuron at uniformly random positions: the sampler.

    Draws the support from the rate's path (an all-zero start for ``q = 256``, else the
    Bernoulli start; :func:`lax.cond` between them for a traced count) and corrects it on the
    2-D view. The values are not its business: the builder draws one for every cell and keeps
    it where the support is, the same way for both paths. Drawing them over the whole array
    costs less than writing a value per placed cell with a scatter, even at sparsity 0.9 on a
    4096x4096 kernel, and a traced count's program holds one draw of the values instead of one
    per path.

    Args:
        layout: the neurons and fan-in of the array.
        zeros: zeros per neuron, a Python int or a traced int32.
        start_key: the key of the Bernoulli start.
        step_key: the key of the correction's proposals.
        place: constrains a view-shaped array to the view's sharding.
        fan_in_shards: how many devices share the fan-in of each neuron. Each holds every
            proposal of a round, so rounds are kept to half a shard's rows.
        flat: the array is not sharded, so random words may be drawn flat
            (:func:`sparseinit._values.drawn_as`).

    Returns:
        ``(support, steps)``: the boolean mask of ``layout.shape``, ``True`` where a weight is
        kept, and the rounds of the correction.
    """
    num_neurons, fan_in = layout.num_neurons, layout.fan_in
    neuron_dim = layout.neuron_dim
    rate = start_rate(fan_in, zeros)

    def correct_(
        view: jax.Array, have: jax.Array, few: bool, counted: bool
    ) -> tuple[jax.Array, jax.Array]:
        chunks = round_chunks(fan_in, num_neurons, zeros, few)
        if fan_in_shards > 1:
            chunks = max(1, min(chunks, fan_in // (2 * CHUNK * fan_in_shards)))
        return correct(
            step_key,
            place(view),
            zeros,
            have,
            counted=counted,
            neuron_dim=neuron_dim,
            chunks=chunks,
            flat=flat,
        )

    def few_kept() -> tuple[jax.Array, jax.Array]:
        # Every cell starts as a zero and the correction places the kept cells: no random
        # bytes to draw.
        have = jnp.full((num_neurons,), fan_in, jnp.int32)
        return correct_(jnp.zeros(layout.view_shape, bool), have, True, False)

    def start() -> tuple[jax.Array, jax.Array]:
        # The Bernoulli start: a byte per cell below the rate makes a zero. Each way of starting
        # gives the view and its zeros per neuron where known, -1 where the bytes are drawn:
        # the correction counts those itself (see `correct`). A start without zeros knows its
        # count, so that a count of 0 runs no round.
        def bernoulli() -> tuple[jax.Array, jax.Array]:
            cells = start_bytes(start_key, fan_in, num_neurons, flat=flat)
            # A traced rate may still be a constant to XLA (a sparsity made inside the caller's
            # jit); the barrier keeps XLA from evaluating the start at compile time.
            below = rate if isinstance(rate, int) else lax.optimization_barrier(rate)
            kept = cells >= jnp.asarray(below, jnp.uint32)
            return place(orient(kept, neuron_dim)), jnp.full((num_neurons,), -1, jnp.int32)

        def no_zeros() -> tuple[jax.Array, jax.Array]:
            return place(jnp.ones(layout.view_shape, bool)), jnp.zeros((num_neurons,), jnp.int32)

        if isinstance(rate, int):
            kept, have = no_zeros() if rate == 0 else bernoulli()
        else:
            # The bytes of a traced rate 0 would all compare False: skip drawing them.
            kept, have = lax.cond(rate == 0, no_zeros, bernoulli)
        # Only drawn bytes need counting: with a concrete rate 0 no round counts.
        drawn = not isinstance(rate, int) or rate > 0
        return correct_(kept, have, False, drawn)

    if isinstance(rate, int):
        support, steps = few_kept() if rate == ALL_ZEROS else start()
    else:
        support, steps = lax.cond(rate == ALL_ZEROS, few_kept, start)
    return layout.from_view(support), steps


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


def take(array: jax.Array, rows: jax.Array, neuron_dim: int) -> jax.Array:
    """``array``'s cells at fan-in positions ``rows`` (``int32[P, N]``), as ``[P, N]``."""
    gather, _ = _dims(neuron_dim)
    return lax.gather(array, rows[..., None], gather, (1, 1), mode=_IN_BOUNDS)


def _exclusive_count(flags: jax.Array) -> tuple[jax.Array, jax.Array]:
    # For each proposal, how many earlier proposals of its neuron are flagged: a running count
    # within each chunk plus one over the chunks' totals, which costs far less than one running
    # count over the whole round (a cumulative sum is quadratic in its length on some backends).
    # Also each neuron's number of flagged proposals, the last running count, which spares the
    # program a reduction of its own.
    chunked = flags.reshape(-1, CHUNK, flags.shape[1]).astype(jnp.int32)
    within = jnp.cumsum(chunked, axis=1)
    totals = within[:, -1]
    through_chunks = jnp.cumsum(totals, axis=0)
    before = within - chunked + (through_chunks - totals)[:, None]
    return before.reshape(flags.shape), through_chunks[-1]


def correct(
    key: jax.Array,
    view: jax.Array,
    zeros: int | jax.Array,
    have: jax.Array,
    *,
    counted: bool,
    neuron_dim: int,
    chunks: int,
    flat: bool = False,
) -> tuple[jax.Array, jax.Array]:
    """Runs the correction: uniform removals (or additions) of zeros until there are ``zeros``.

    The proposals form one sequence per neuron (see the module's docstring for their random
    words). Taken one at a time, a proposal is accepted when it lands on the right side of the
    current zero set and the neuron still needs one; this is the process the exactness argument
    is about. A round applies ``chunks * CHUNK`` consecutive proposals at once with the same
    result: a proposal is accepted in sequence exactly when its cell was on the right side at
    the start of the round, no earlier proposal of the round hit that cell (it would have
    flipped it), and fewer than the neuron's remaining need of earlier ones were accepted.
    Rounds repeat until every neuron is done; with ``chunks`` from :func:`round_chunks` the
    first nearly always suffices, so the correction is one dependent step.

    A neuron's count of zeros is carried from round to round. With ``counted``, each round
    counts them in the view instead: for a Bernoulli start, whose count is known only once the
    view is drawn. Counted before the loop, XLA on CPU would fuse the start's random words into
    the count as well as into the view, hashing each word twice; the loop's first view is a
    buffer, which the count reads.

    Args:
        key: a typed key for the proposals.
        view: the 2-D boolean view, ``False`` exactly at the current zeros.
        zeros: the zeros each neuron ends with, a scalar or ``int32[N]``.
        have: ``int32[N]``, the zeros each neuron of ``view`` has, or -1 where not known
            (then at least one round is run).
        counted: each round counts the zeros of its view (``have`` then only decides whether
            a first round is run).
        neuron_dim: which dimension of ``view`` indexes neurons.
        chunks: chunks of ``CHUNK`` proposals per round.
        flat: the view is not sharded, so the proposals may be drawn flat.

    Returns:
        The corrected view and the number of rounds run: the dependent steps.
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
    _, scatter = _dims(neuron_dim)

    def per_neuron(x: jax.Array) -> jax.Array:
        return jnp.expand_dims(x, fan_dim)

    def draw(chunk: jax.Array) -> jax.Array:
        return random_words(jax.random.fold_in(key, chunk), (CHUNK, num_neurons), flat=flat)

    def proposal_words(first_chunk: jax.Array) -> jax.Array:
        # The words of the round's proposals, uint32[count, N]: of the counter pairs
        # (proposal, neuron) under a threefry key, else of one fold_in per chunk.
        if _random.applies(key):
            shape = (count, num_neurons)
            first = (first_chunk * CHUNK).astype(jnp.uint32)
            proposal = lax.broadcasted_iota(jnp.uint32, shape, 0) + first
            return _random.words(key, proposal, lax.broadcasted_iota(jnp.uint32, shape, 1))
        chunk_words = jax.vmap(draw)(first_chunk + jnp.arange(chunks, dtype=jnp.int32))
        return chunk_words.reshape(count, num_neurons)

    def round_(carry: tuple[jax.Array, jax.Array, jax.Array]) -> tuple:
        first_chunk, view, now = carry
        is_zero = ~view
        if counted:
            now = is_zero.sum(axis=fan_dim, dtype=jnp.int32)
        removing = now > zeros
        remaining = jnp.abs(now - zeros)
        # The claim's scatter and its gather both read them.
        rows = _random.written_out(
            (proposal_words(first_chunk) % jnp.uint32(fan_in)).astype(jnp.int32)
        )
        number = lax.broadcasted_iota(claim_dtype, rows.shape, 0) + jnp.asarray(1, claim_dtype)
        on_side = is_zero == per_neuron(removing)
        claim = jnp.where(on_side, unclaimed, jnp.asarray(0, claim_dtype))
        claim = lax.scatter_min(claim, rows[..., None], number, scatter, mode=_IN_BOUNDS)
        eligible = take(claim, rows, neuron_dim) == number
        before, hits = _exclusive_count(eligible)
        # The accepted proposals are a neuron's first `remaining` eligible ones, if it has that
        # many.
        accepted = eligible & (before < remaining)
        # Flip every cell whose first proposal is accepted: those up to the last accepted.
        last = jnp.max(jnp.where(accepted, number, jnp.asarray(0, claim_dtype)), axis=0)
        view = view ^ ((claim != 0) & (claim <= per_neuron(last)))
        moved = jnp.minimum(hits, remaining)
        return first_chunk + chunks, view, jnp.where(removing, now - moved, now + moved)

    def busy(carry: tuple[jax.Array, jax.Array, jax.Array]) -> jax.Array:
        return jnp.any(carry[2] != zeros)

    end, view, _ = lax.while_loop(busy, round_, (jnp.int32(0), view, have))
    return view, end // chunks


def start_bytes(
    key: jax.Array, layout_fan_in: int, num_neurons: int, *, flat: bool = False
) -> jax.Array:
    """One random byte per cell, as ``uint32[fan_in, N]``: four from each random word."""
    words = _random.written_out(
        random_words(key, (math.ceil(layout_fan_in / 4), num_neurons), flat=flat)
    )
    # Row 4 w + i is byte i of word row w: a block of rows comes from a block of words, so a
    # sharded fan-in axis keeps every byte on the device of its word. The words are written out
    # once (hashed in the pass that made the bytes, each word was hashed four times); repeating
    # each word row and shifting by the row's byte is then one elementwise pass (stacking the
    # four shifted copies took about twice as long to run and to compile on CPU).
    rows = jnp.repeat(words, 4, axis=0)[:layout_fan_in]
    byte = lax.broadcasted_iota(jnp.uint32, (layout_fan_in, 1), 0) % jnp.uint32(4)
    return (rows >> (byte * jnp.uint32(8))) & jnp.uint32(255)


def orient(x: jax.Array, neuron_dim: int) -> jax.Array:
    """A ``(fan_in, N)`` array in the view's orientation."""
    return x if neuron_dim == 1 else x.T
