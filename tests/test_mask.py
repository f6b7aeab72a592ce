"""The masks are exact, uniform and independent: statistical tests of where the zeros go.

Every test draws many masks (wide matrices, from a fixed list of keys) and asks whether they look
like independent uniformly random ``k``-subsets of each neuron's fan-in:

* every neuron has exactly ``k`` zeros;
* every position of a neuron's fan-in is zeroed equally often, per neuron and pooled over all
  neurons and draws (a bias that every neuron shares adds up);
* for a tiny fan-in, every one of the ``binom(F, k)`` subsets is equally likely;
* the overlap of two neurons' zero sets (in the same matrix or in different ``batch_axis``
  slices) is hypergeometric, as it is for independent subsets; and over all pairs of neurons at
  once, how many neurons of a draw zero a position is no more spread than independence allows;
* the arrangement within a neuron: its zeros among the first half of the fan-in are
  hypergeometric, and positions ``i`` and ``i + d`` (``d`` = 1 to 4) are both zeros as often as
  ``k (k - 1) / (F (F - 1))`` says.

The cases: small fan-ins (5 to 20) through every factory and layout (``batch_axis``, a conv
kernel, ``min_kept``, ``sparsify``, ``martens``, ``torch_sparse``), and larger fan-ins (64, 100,
784 and 1024 at sparsities 0.3, 0.5 and 0.7; 64 and 784 at 0.1 and 0.9), each with a concrete
sparsity and with one traced under ``jit``. The sampler draws a Bernoulli start and corrects it
to exact counts, except where a neuron's zeros or kept weights are at most an eighth of its
fan-in: there it places those few cells by the correction alone. The sparsities 0.1 and 0.9 skip
the start, every other case takes it; the tests hold for any correct sampler, whichever path it
takes.

The same checks run on deliberately wrong samplers to show that each of them fails at least the
check it should, so a passing library is evidence, not an accident: Bernoulli, with replacement,
a random cyclic window, one subset shared by all neurons and a biased sort; and samplers that are
right where the start is skipped (the cases at 0.1 and 0.9 pass them) but wrong in one stage on
the start's path, at the sizes of the library's tests there: a correction that favours low
positions, a start whose rate drifts by 2% across the fan-in, a start shared by all neurons, a
start shared by two halves of the neurons, and a start whose adjacent cells share their random
byte one time in twenty.

The keys are fixed, so every test is deterministic. Each p-value is compared with ``P_CUTOFF``
(``1e-6``): a correct sampler fails one such check for one key choice with that probability,
while the wrong samplers below give p-values below ``1e-30`` at these sample sizes (the comments
of ``START_PATH_WRONG`` give each one's).
"""

import functools
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import sparseinit

# A correct sampler falls below this for a given key with probability 1e-6. The module makes
# about 300 such checks of the library's masks, and a new sampler (or new keys) is a fresh draw
# for each of them, so a correct one fails some check of the module with probability about 3e-4.
# The wrong samplers of this module land many orders of magnitude below it (below 1e-30 in the
# checks they must fail), so the cutoff separates the two with a wide margin on both sides.
P_CUTOFF = 1e-6
# Mean tests: a correct sampler lies beyond 5 standard errors with probability 5.7e-7.
Z_CUTOFF = 5.0


# ---- drawing many masks ------------------------------------------------------------------


def _keys(seed: int, n: int) -> list[jax.Array]:
    # Folding in the index is cheap; indexing a key array costs a dispatch per element.
    base = jax.random.key(seed)
    return [jax.random.fold_in(base, i) for i in range(n)]


def _stack(mask, keys) -> np.ndarray:
    # One mask per key, as numpy: ``mask(key)`` is a compiled function run again and again.
    return np.stack([np.asarray(mask(k)) for k in keys])


@functools.cache
def _draw(init, shape: tuple[int, ...], draws: int, seed: int, weights: bool) -> np.ndarray:
    """``draws`` masks (``True`` = kept) of ``init`` on ``shape``, one per fixed key.

    A Python loop over keys runs the one compiled builder of ``shape`` again and again; a
    ``vmap`` over keys would compile a batched builder, several times slower to compile than
    these draws take to run (``vmap`` gives the same masks: see ``test_determinism.py``).
    """
    if weights:
        return _stack(lambda k: init(k, shape) != 0, _keys(seed, draws))
    return _stack(lambda k: init.mask(k, shape), _keys(seed, draws))


def _zero_sets(kept: np.ndarray, neuron_axes: tuple[int, ...]) -> np.ndarray:
    """Zero indicators as ``(draws, neurons, fan_in)`` from masks ``(draws, *shape)``.

    ``neuron_axes`` are axes of the weight shape (not counting the draws axis); neurons are
    numbered in C order over them, fan-in positions in C order over the other axes.
    """
    ndim = kept.ndim - 1
    neurons = [a % ndim + 1 for a in neuron_axes]
    fans = [a for a in range(1, ndim + 1) if a not in neurons]
    moved = np.transpose(~kept, [0, *neurons, *fans])
    num_neurons = math.prod(kept.shape[a] for a in neurons)
    return moved.reshape(kept.shape[0], num_neurons, -1)


# ---- the checks --------------------------------------------------------------------------


def _exact_count(zeros: np.ndarray, k: int) -> bool:
    return bool(np.all(zeros.sum(axis=-1) == k))


def _position_pvalue(zeros: np.ndarray) -> float:
    """Chi-square p-value that every position of every group is zeroed equally often.

    ``zeros`` is ``(replicates, groups, fan_in)``; the statistic sums each group's position
    counts over the replicates. For a uniform ``k``-subset of ``F`` positions the zero
    indicators have variance ``p (1 - p)`` with ``p = k / F`` and pairwise covariance
    ``-p (1 - p) / (F - 1)`` (sampling without replacement), so with ``D`` independent
    replicates the position counts ``O`` of one group satisfy
    ``sum((O - D p)**2) / (D p (1 - p) F / (F - 1)) ~ chi2(F - 1)``. Groups are independent:
    their statistics add up, as do the degrees of freedom.

    Three arrangements of the same ``(draws, neurons, fan_in)`` zeros use it: as they are (each
    neuron's positions over the draws), pooled (``(draws * neurons, 1, fan_in)``: a bias that
    every neuron shares adds up over all of them) and across neurons (``(neurons, draws,
    fan_in)``: how many neurons of one draw zero a position, which spreads wider than binomial
    when neurons share their zeros; :func:`_across_neurons_pvalue`).
    """
    draws, neurons, fan_in = zeros.shape
    p = zeros.mean()
    if p in (0.0, 1.0):
        return 1.0
    observed = zeros.sum(axis=0)
    variance = draws * p * (1 - p) * fan_in / (fan_in - 1)
    statistic = float(((observed - draws * p) ** 2).sum() / variance)
    return float(stats.chi2.sf(statistic, neurons * (fan_in - 1)))


def _pooled_position_pvalue(zeros: np.ndarray) -> float:
    """:func:`_position_pvalue` with every neuron of every draw as one replicate."""
    return _position_pvalue(zeros.reshape(-1, 1, zeros.shape[-1]))


def _across_neurons_pvalue(zeros: np.ndarray) -> float:
    """P-value that the neurons of each draw zero each position independently of each other.

    The sum over positions of the squared count of neurons zeroing it is the sum of the
    overlaps of all pairs of neurons, so this tests every pair at once, not only the pairs that
    :func:`_overlap_pvalue` is given.
    """
    return _position_pvalue(zeros.transpose(1, 0, 2))


def _subset_pvalue(zeros: np.ndarray, k: int) -> float:
    """Chi-square p-value that every ``k``-subset is equally likely (0 if a row is not one)."""
    fan_in = zeros.shape[-1]
    rows = zeros.reshape(-1, fan_in)
    if not np.all(rows.sum(axis=1) == k):
        return 0.0
    codes = rows.astype(np.int64) @ (1 << np.arange(fan_in, dtype=np.int64))
    subsets = [sum(1 << i for i in s) for s in itertools.combinations(range(fan_in), k)]
    observed = np.array([(codes == c).sum() for c in subsets])
    return float(stats.chisquare(observed).pvalue)


def _merge_small_bins(observed: np.ndarray, expected: np.ndarray, least: float = 5.0):
    """Merges adjacent bins until each expects at least ``least``: chi-square needs it."""
    obs, exp = [], []
    o = e = 0.0
    for oi, ei in zip(observed, expected, strict=True):
        o, e = o + oi, e + ei
        if e >= least:
            obs.append(o)
            exp.append(e)
            o = e = 0.0
    if e > 0 or o > 0:
        obs[-1] += o
        exp[-1] += e
    return np.array(obs), np.array(exp)


def _hypergeom_pvalue(values: np.ndarray, total: int, good: int, drawn: int) -> float:
    """Chi-square p-value that independent ``values`` follow ``hypergeom(total, good, drawn)``.

    0 if a value lies outside the law's support.
    """
    law = stats.hypergeom(total, good, drawn)
    support = np.arange(min(good, drawn) + 1)
    observed = np.bincount(values.ravel(), minlength=support.size)
    if observed.size > support.size or observed[: max(0, good + drawn - total)].any():
        return 0.0
    obs, exp = _merge_small_bins(observed, values.size * law.pmf(support))
    if obs.size < 2:
        return 1.0
    return float(stats.chisquare(obs, exp * obs.sum() / exp.sum()).pvalue)


def _overlaps(zeros: np.ndarray, pairs: list[tuple[int, int]]) -> np.ndarray:
    return np.concatenate([(zeros[:, a] & zeros[:, b]).sum(axis=-1) for a, b in pairs])


def _overlap_pvalue(zeros: np.ndarray, k: int, pairs: list[tuple[int, int]]) -> float:
    """Chi-square p-value that the overlaps of the given neuron pairs are hypergeometric.

    The pairs must be disjoint, so that their overlaps are independent samples.
    """
    return _hypergeom_pvalue(_overlaps(zeros, pairs), zeros.shape[-1], k, k)


def _overlap_mean_z(zeros: np.ndarray, k: int, pairs: list[tuple[int, int]]) -> float:
    """Standard score of the mean overlap against the hypergeometric mean ``k**2 / F``."""
    fan_in = zeros.shape[-1]
    overlap = _overlaps(zeros, pairs)
    law = stats.hypergeom(fan_in, k, k)
    if law.std() == 0:
        return 0.0 if np.all(overlap == law.mean()) else math.inf
    return float((overlap.mean() - law.mean()) / (law.std() / math.sqrt(overlap.size)))


def _halves_pvalue(zeros: np.ndarray, k: int) -> float:
    """Chi-square p-value that a neuron's zeros among its first ``F // 2`` are hypergeometric.

    Sensitive to a drift of the zeros towards one end of the fan-in (a shifted mean) and to
    zeros that clump together or repel each other (a wider or narrower law).
    """
    fan_in = zeros.shape[-1]
    return _hypergeom_pvalue(zeros[..., : fan_in // 2].sum(axis=-1), fan_in, k, fan_in // 2)


# Lags of the near pairs: the adjacent cells of a byte, a word or a small block are where a
# sampler that draws several cells from one random word would correlate them.
NEAR_LAGS = (1, 2, 3, 4)


def _all_zero(fan_in: int, k: int, cells: int) -> float:
    # The probability that ``cells`` given distinct positions are all zeros: k^(j) / F^(j).
    return math.perm(k, cells) / math.perm(fan_in, cells) if fan_in >= cells else 0.0


def _near_pairs_pvalue(zeros: np.ndarray, k: int, lags=NEAR_LAGS) -> float:
    """P-value that positions ``i`` and ``i + d`` are both zeros as often as they should be.

    For a uniform ``k``-subset, ``A_d``, the number of ``i < F - d`` with both ``i`` and
    ``i + d`` zeros, has mean ``(F - d) p2`` and the exact variance below, from the
    probabilities ``p2, p3, p4`` that 2, 3 or 4 given positions are all zeros: two of the
    ``F - d`` products share a position for ``2 max(F - 2d, 0)`` ordered pairs, and none for the
    others. Summed over every neuron of every draw (independent), ``A_d`` is normal to a
    fraction of a percent at 5 standard deviations; the p-value is two-sided, the smallest over
    the lags, times their number (Bonferroni).
    """
    fan_in = zeros.shape[-1]
    rows = zeros.reshape(-1, fan_in)
    p2, p3, p4 = (_all_zero(fan_in, k, j) for j in (2, 3, 4))
    smallest = 1.0
    for d in lags:
        if d >= fan_in:
            continue
        n, shared = fan_in - d, 2 * max(fan_in - 2 * d, 0)
        variance = n * p2 + shared * p3 + (n * (n - 1) - shared) * p4 - (n * p2) ** 2
        total = int((rows[:, :-d] & rows[:, d:]).sum())
        excess = total - rows.shape[0] * n * p2
        if variance <= 1e-12:
            p = 1.0 if abs(excess) < 1e-6 else 0.0
        else:
            p = float(2 * stats.norm.sf(abs(excess) / math.sqrt(rows.shape[0] * variance)))
        smallest = min(smallest, p)
    return min(1.0, smallest * len(lags))


def _disjoint_pairs(neurons: int) -> list[tuple[int, int]]:
    return [(i, i + 1) for i in range(0, neurons - 1, 2)]


def _pvalues(zeros: np.ndarray, k: int, pairs=None) -> dict[str, float]:
    """The p-value of each check of ``zeros`` (``(draws, neurons, fan_in)``).

    ``count`` is 1 or 0; ``overlap mean`` is the two-sided p-value of ``_overlap_mean_z``.
    """
    pairs = _disjoint_pairs(zeros.shape[1]) if pairs is None else pairs
    out = {
        "count": float(_exact_count(zeros, k)),
        "positions": _position_pvalue(zeros),
        "pooled positions": _pooled_position_pvalue(zeros),
        "halves": _halves_pvalue(zeros, k),
        "near pairs": _near_pairs_pvalue(zeros, k),
    }
    if math.comb(zeros.shape[-1], k) <= 64:
        out["subsets"] = _subset_pvalue(zeros, k)
    if pairs:
        out["overlaps"] = _overlap_pvalue(zeros, k, pairs)
        out["overlap mean"] = float(2 * stats.norm.sf(abs(_overlap_mean_z(zeros, k, pairs))))
    if zeros.shape[1] > 1:
        out["across neurons"] = _across_neurons_pvalue(zeros)
    return out


# What each failed p-value says is wrong (the names ``_failed_checks`` reports).
_CHECKS = {
    "count": "count",
    "positions": "positions",
    "pooled positions": "positions",
    "halves": "arrangement",
    "near pairs": "arrangement",
    "subsets": "subsets",
    "overlaps": "independence",
    "overlap mean": "independence",
    "across neurons": "independence",
}
# The two-sided p-value of Z_CUTOFF standard errors, the cutoff of the overlap's mean.
_Z_PVALUE = float(2 * stats.norm.sf(Z_CUTOFF))


def _rejects(name: str, p: float) -> bool:
    return p < (_Z_PVALUE if name == "overlap mean" else P_CUTOFF)


def _failed(pvalues: dict[str, float]) -> set[str]:
    return {_CHECKS[name] for name, p in pvalues.items() if _rejects(name, p)}


def _failed_checks(zeros: np.ndarray, k: int, pairs=None) -> set[str]:
    """The checks that ``zeros`` (``(draws, neurons, fan_in)``) fails; empty if it passes."""
    return _failed(_pvalues(zeros, k, pairs))


# ---- wrong samplers: each must fail -----------------------------------------------------


def _bernoulli(rng, draws, neurons, fan_in, k):
    # Each weight zeroed independently with probability k / F: right on average, not exact.
    return rng.random((draws, neurons, fan_in)) < k / fan_in


def _with_replacement(rng, draws, neurons, fan_in, k):
    # k positions drawn with replacement: collisions leave fewer than k zeros.
    zeros = np.zeros((draws, neurons, fan_in), bool)
    positions = rng.integers(0, fan_in, (draws, neurons, k))
    np.put_along_axis(zeros, positions, True, axis=-1)
    return zeros


def _cyclic_window(rng, draws, neurons, fan_in, k):
    # k consecutive positions from a random start: exact and position-uniform, but only F of
    # the binom(F, k) subsets can occur.
    start = rng.integers(0, fan_in, (draws, neurons, 1))
    positions = (start + np.arange(k)) % fan_in
    zeros = np.zeros((draws, neurons, fan_in), bool)
    np.put_along_axis(zeros, positions, True, axis=-1)
    return zeros


def _shared_subset(rng, draws, neurons, fan_in, k):
    # One uniform subset per draw, copied to every neuron: uniform, but not independent.
    order = np.argsort(rng.random((draws, 1, fan_in)), axis=-1)
    zeros = np.zeros((draws, 1, fan_in), bool)
    np.put_along_axis(zeros, order[..., :k], True, axis=-1)
    return np.broadcast_to(zeros, (draws, neurons, fan_in))


def _coarse_sort(rng, draws, neurons, fan_in, k):
    # The first k of a stable sort of coarse random keys: ties favour low positions.
    order = np.argsort(rng.integers(0, 4, (draws, neurons, fan_in)), axis=-1, kind="stable")
    zeros = np.zeros((draws, neurons, fan_in), bool)
    np.put_along_axis(zeros, order[..., :k], True, axis=-1)
    return zeros


@pytest.mark.parametrize(
    ("sampler", "fan_in", "k", "must_fail"),
    [
        (_bernoulli, 5, 2, "count"),
        (_bernoulli, 20, 5, "count"),
        (_with_replacement, 5, 2, "count"),
        (_with_replacement, 20, 5, "count"),
        (_cyclic_window, 5, 2, "subsets"),
        (_shared_subset, 5, 2, "independence"),
        (_shared_subset, 20, 5, "independence"),
        (_coarse_sort, 5, 2, "positions"),
        (_coarse_sort, 20, 5, "positions"),
    ],
)
def test_wrong_samplers_fail_the_checks(sampler, fan_in, k, must_fail):
    zeros = sampler(np.random.default_rng(0), 2000, 8, fan_in, k)
    assert must_fail in _failed_checks(zeros, k)


def test_a_correct_reference_sampler_passes_the_checks():
    # numpy's permutation-based subsets are what the library must look like.
    rng = np.random.default_rng(0)
    order = np.argsort(rng.random((2000, 8, 20)), axis=-1)
    zeros = np.zeros((2000, 8, 20), bool)
    np.put_along_axis(zeros, order[..., :5], True, axis=-1)
    assert _failed_checks(zeros, 5) == set()


# ---- the larger fan-ins: cases, sizes and wrong samplers of the Bernoulli start ----------
#
# The library's sampler draws a Bernoulli start and corrects it to exactly k zeros per neuron,
# except where the smaller side (zeros or kept weights) is at most an eighth of the fan-in: there
# it skips the start and places those few cells by the correction alone. The cases of the tests
# below cover both paths: MIDDLE takes the start (784 inputs at 0.3 to 0.7 is what an MNIST
# layer gets), FEW skips it. Any correct sampler passes them all, whichever path it takes.
MIDDLE = [(f, s) for f in (64, 100, 784, 1024) for s in (0.3, 0.5, 0.7)]
FEW = [(f, s) for f in (64, 784) for s in (0.1, 0.9)]
NEURONS = 256


def _draws_for(fan_in: int) -> int:
    # 400 x 256 = 102400 neurons for the small fan-ins, 100 x 256 = 25600 for the large ones:
    # about 7 to 26 million cells, under a second of drawing each (compiling costs more).
    return 400 if fan_in <= 128 else 100


# Each wrong sampler below draws exact counts the way the library does (a Bernoulli start, then
# a correction to exactly k zeros) with one flaw in one stage. Where the start is skipped they
# draw uniform subsets, so the tests of FEW pass them
# (``test_start_path_wrong_samplers_are_right_where_the_start_is_skipped``): only tests on the
# start's path can tell them from the library.


def _uses_start(fan_in: int, k: int) -> bool:
    # The library's rule: the start is skipped where the smaller side is at most F // 8 cells.
    return min(k, fan_in - k) > fan_in // 8


def _uniform_subsets(rng, draws, neurons, fan_in, k):
    # The reference: the first k of a uniformly random permutation.
    order = np.argsort(rng.random((draws, neurons, fan_in), dtype=np.float32), axis=-1)
    zeros = np.zeros((draws, neurons, fan_in), bool)
    np.put_along_axis(zeros, order[..., :k], True, axis=-1)
    return zeros


def _start(rng, draws, neurons, fan_in, k, rate=1.0):
    # One random byte per cell, a zero below 256 k / F (times ``rate``, per position).
    q = np.round(256 * k / fan_in * np.asarray(rate))
    return rng.integers(0, 256, (draws, neurons, fan_in), dtype=np.uint8) < q


def _correct_uniformly(rng, zeros, k):
    # The library's correction: while a neuron has too many zeros (too few), a uniform proposal
    # that hits a zero (a kept cell) flips it; anything else is proposed again. Each flip is
    # uniform among the cells on its side, which makes a uniform start a uniform k-subset.
    shape, fan_in = zeros.shape, zeros.shape[-1]
    zeros = zeros.reshape(-1, fan_in).copy()
    moved = zeros.sum(axis=-1) - k
    while (rows := np.flatnonzero(moved)).size:
        cols = rng.integers(0, fan_in, rows.size)
        hit = zeros[rows, cols] == (moved[rows] > 0)
        rows, cols = rows[hit], cols[hit]
        zeros[rows, cols] = ~zeros[rows, cols]
        moved[rows] -= np.sign(moved[rows])
    return zeros.reshape(shape)


def _correct_low_first(zeros, k):
    # Exact counts, wrong positions: removes the highest zeros, adds the lowest kept cells.
    moved = zeros.sum(axis=-1, keepdims=True, dtype=np.int16) - k
    from_top = np.cumsum(zeros[..., ::-1], axis=-1, dtype=np.int16)[..., ::-1]
    from_bottom = np.cumsum(~zeros, axis=-1, dtype=np.int16)
    return zeros & ~(from_top <= moved) | ~zeros & (from_bottom <= -moved)


def _start_path(draw_start, correct=_correct_uniformly):
    # A sampler that draws ``draw_start`` then ``correct`` on the start's path, and uniform
    # subsets where the start is skipped.
    def sampler(rng, draws, neurons, fan_in, k):
        if not _uses_start(fan_in, k):
            return _uniform_subsets(rng, draws, neurons, fan_in, k)
        zeros = draw_start(rng, draws, neurons, fan_in, k)
        return correct(zeros, k) if correct is _correct_low_first else correct(rng, zeros, k)

    return sampler


# The right start at the right rate, corrected by favouring low positions.
_low_first_correction = _start_path(_start, _correct_low_first)
# Right in all but this: the start's rate rises across the fan-in, from 2% below the right rate
# at the first position to 2% above it at the last.
_ramped_start = _start_path(
    lambda rng, d, n, f, k: _start(rng, d, n, f, k, np.linspace(0.98, 1.02, f))
)
# One start per draw, shared by all its neurons: the uniform correction then differs per neuron.
_shared_start = _start_path(
    lambda rng, d, n, f, k: np.broadcast_to(_start(rng, d, 1, f, k), (d, n, f))
)
# The start of the second half of the neurons repeats that of the first half (as a key reused
# for another block would): the adjacent neurons that the overlap check pairs stay independent.
_halves_share_start = _start_path(
    lambda rng, d, n, f, k: np.concatenate([_start(rng, d, n // 2, f, k)] * 2, axis=1)
)


def _clumped(rng, d, n, f, k, share=0.05):
    # Cell 2i + 1 takes the byte of cell 2i with probability ``share``: every cell is still a zero
    # with the right probability and the pair is exchangeable, so every position is zeroed equally
    # often, but the two cells of a pair are zeros together too often.
    zeros = _start(rng, d, n, f, k)
    copy = rng.random((d, n, f // 2), dtype=np.float32) < share
    odd = zeros[..., 1 : 2 * (f // 2) : 2]
    zeros[..., 1 : 2 * (f // 2) : 2] = np.where(copy, zeros[..., 0 : 2 * (f // 2) : 2], odd)
    return zeros


_clumped_start = _start_path(_clumped)


# The checks each of them must fail at the sample size of the library's tests on the start's
# path (``test_larger_fan_in_masks_are_exact_uniform_and_independent``), with the p-values they
# get there with numpy's generator seeded 0 (fan-in 64 at 0.3, 102400 neurons; 1024 at 0.7,
# 25600 neurons). None of them fails the count check; the checks named are those each one is
# made to fail (some fail others too).
START_PATH_WRONG = [
    # Positions near the low end are zeroed too often: positions, pooled positions, halves, near
    # pairs and across neurons all give p below 1e-300 at both sizes (the overlaps too, 1e-230
    # or less at 1024: the neurons share the favoured cells).
    (_low_first_correction, ("positions", "pooled positions", "halves", "across neurons")),
    # Pooled positions 2e-34 at fan-in 64, below 1e-300 at 1024; halves 2e-34 and below
    # 1e-300. A drift of 2% is too small for the per-neuron positions check at fan-in 64
    # (p = 0.04): pooling over the neurons is what finds it there.
    (_ramped_start, ("pooled positions", "halves")),
    # Overlaps, overlap mean and across neurons: p below 1e-300 at both sizes.
    (_shared_start, ("overlaps", "overlap mean", "across neurons")),
    # Across neurons below 1e-300 at both sizes (pooled positions 6e-8 and 5e-64: its variance
    # assumes independent neurons). The overlaps of adjacent neurons see nothing (0.77 and
    # 0.40): only a check of all the pairs finds two neurons far apart that share their zeros.
    (_halves_share_start, ("across neurons",)),
    # Near pairs below 1e-300 at both sizes (lag 1 is 51 and 121 standard errors out); halves
    # 5e-19 at fan-in 64 but 0.06 at 1024, and the checks of positions see nothing (0.09 to 0.9):
    # the near pairs are what finds it on a large fan-in.
    (_clumped_start, ("near pairs",)),
]


@pytest.mark.parametrize(("fan_in", "sparsity"), [(64, 0.3), (1024, 0.7)])
@pytest.mark.parametrize(("sampler", "must_fail"), START_PATH_WRONG)
def test_start_path_wrong_samplers_fail_at_the_sizes_of_the_tests(
    sampler, must_fail, fan_in, sparsity
):
    k = sparseinit.num_zeros(sparsity, fan_in, "ceil")
    zeros = sampler(np.random.default_rng(0), _draws_for(fan_in), NEURONS, fan_in, k)
    pvalues = _pvalues(zeros, k)
    assert pvalues["count"] == 1.0
    assert all(_rejects(name, pvalues[name]) for name in must_fail), pvalues


def test_start_path_wrong_samplers_are_right_where_the_start_is_skipped():
    # In the cases of FEW they draw exactly the reference's uniform subsets, which pass every
    # check at the sizes of the library's tests: tests of such cases alone cannot tell them from
    # a correct sampler.
    for fan_in, sparsity in FEW:
        k = sparseinit.num_zeros(sparsity, fan_in, "ceil")
        assert not _uses_start(fan_in, k)
        reference = _uniform_subsets(np.random.default_rng(k), 4, 8, fan_in, k)
        for sampler, _ in START_PATH_WRONG:
            wrong = sampler(np.random.default_rng(k), 4, 8, fan_in, k)
            np.testing.assert_array_equal(wrong, reference)
    k = sparseinit.num_zeros(0.1, 64, "ceil")
    zeros = _uniform_subsets(np.random.default_rng(0), _draws_for(64), NEURONS, 64, k)
    assert _failed_checks(zeros, k) == set()


# ---- the library -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sparsity", "k"),
    [
        (0.25, 5),  # zeros are the smaller side
        (0.8, 16),  # kept weights are the smaller side
    ],
)
def test_sparse_masks_are_exact_uniform_and_independent(sparsity, k):
    # Two independent (20, 256) matrices along batch_axis 0, 100 keys: 100 draws of each of
    # 512 neurons, 25 or more expected zeros per (neuron, position) cell.
    kept = _draw(sparseinit.sparse(sparsity, batch_axis=0), (2, 20, 256), 100, 1, False)
    zeros = _zero_sets(kept, (0, 2))  # neuron (e, j) is number 256 * e + j
    assert zeros.shape == (100, 512, 20)
    assert _failed_checks(zeros, k) == set()


@pytest.mark.parametrize("sparsity", [0.25, 0.8])
def test_neurons_in_different_batch_slices_are_independent(sparsity):
    k = sparseinit.num_zeros(sparsity, 20, "ceil")
    kept = _draw(sparseinit.sparse(sparsity, batch_axis=0), (2, 20, 256), 100, 1, False)
    zeros = _zero_sets(kept, (0, 2))
    across = [(j, 256 + j) for j in range(256)]  # the same output j in slice 0 and slice 1
    assert _overlap_pvalue(zeros, k, across) >= P_CUTOFF
    assert abs(_overlap_mean_z(zeros, k, across)) <= Z_CUTOFF


def test_conv_kernel_masks_are_uniform_over_the_receptive_field():
    # Fan-in 3*3*2 = 18 spans the spatial axes too: ceil(0.6 * 18) = 11 zeros, 7 kept.
    kept = _draw(sparseinit.sparse(0.6), (3, 3, 2, 256), 100, 2, False)
    zeros = _zero_sets(kept, (3,))
    assert zeros.shape == (100, 256, 18)
    assert _failed_checks(zeros, 11) == set()


@pytest.mark.parametrize(
    ("sparsity", "k", "seed"),
    [
        (0.4, 2, 3),  # 2 zeros of 5
        (0.6, 3, 7),  # 2 kept weights of 5
    ],
)
def test_every_subset_is_equally_likely(sparsity, k, seed):
    # 100 draws of 256 neurons: 25600 subsets, about 2560 expected for each of the 10.
    # (Different seeds: with one key the two masks would be complements of each other.)
    kept = _draw(sparseinit.sparse(sparsity), (5, 256), 100, seed, False)
    zeros = _zero_sets(kept, (1,))
    assert math.comb(5, k) == 10
    assert _subset_pvalue(zeros, k) >= P_CUTOFF
    assert _failed_checks(zeros, k) == set()


@pytest.mark.parametrize(
    ("sparsity", "min_kept", "k"),
    [
        (0.99, 3, 17),  # ceil(19.8) = 20 zeros capped at 17: 3 kept weights
        (0.95, 16, 4),  # 19 zeros capped at 4: 16 kept weights
    ],
)
def test_min_kept_masks_are_uniform(sparsity, min_kept, k):
    kept = _draw(sparseinit.sparse(sparsity, min_kept=min_kept), (20, 256), 100, 8, False)
    assert _failed_checks(_zero_sets(kept, (1,)), k) == set()


def test_sparsify_masks_are_uniform():
    init = sparseinit.sparsify(jax.nn.initializers.normal(), 0.25)
    kept = _draw(init, (20, 256), 100, 4, True)
    assert _failed_checks(_zero_sets(kept, (1,)), 5) == set()


def test_martens_masks_are_uniform():
    kept = _draw(sparseinit.martens(3), (20, 256), 100, 5, True)
    assert _failed_checks(_zero_sets(kept, (1,)), 17) == set()


def test_torch_sparse_masks_are_uniform_over_each_input_row():
    # Flax kernel (in, out) = (256, 20): each input row gets ceil(0.25 * 20) = 5 zeros.
    kept = _draw(sparseinit.torch_sparse(0.25), (256, 20), 100, 6, True)
    zeros = _zero_sets(kept, (0,))
    assert zeros.shape == (100, 256, 20)
    assert _failed_checks(zeros, 5) == set()


@pytest.mark.parametrize("sparsity", [0.3, 0.9])
def test_mask_does_not_depend_on_the_view_orientation(sparsity):
    # A Flax kernel (in, out) is sampled on a (fan_in, neurons) view and the PyTorch-style
    # (out, in) on a (neurons, fan_in) view: the same neurons must get the same subsets.
    key = jax.random.key(11)
    flax_mask = sparseinit.sparse(sparsity).mask(key, (40, 24))
    torch_mask = sparseinit.sparse(sparsity, in_axis=-1, out_axis=-2).mask(key, (24, 40))
    np.testing.assert_array_equal(np.asarray(flax_mask), np.asarray(torch_mask).T)
    # An ensemble kernel (batch, in, out) needs a transpose; its slices match too.
    stacked = sparseinit.sparse(sparsity, batch_axis=0).mask(key, (1, 40, 24))
    np.testing.assert_array_equal(np.asarray(stacked[0]), np.asarray(flax_mask))


# ---- the library on larger fan-ins (MIDDLE and FEW, above) -------------------------------


@functools.cache
def _traced_mask(shape: tuple[int, ...]):
    # One compiled program per shape serves every key and every sparsity.
    return jax.jit(lambda key, sparsity: sparseinit.sparse(sparsity).mask(key, shape))


def _library_zeros(fan_in: int, sparsity: float, traced: bool, seed: int) -> np.ndarray:
    # Zero sets (draws, 256, fan_in) of a Flax kernel (fan_in, 256); not cached: the 32 of them
    # would hold over a gigabyte.
    shape = (fan_in, NEURONS)
    if traced:
        mask = functools.partial(_traced_mask(shape), sparsity=jnp.float32(sparsity))
    else:
        init = sparseinit.sparse(sparsity)
        mask = functools.partial(init.mask, shape=shape)
    return _zero_sets(_stack(mask, _keys(seed, _draws_for(fan_in))), (1,))


@pytest.mark.parametrize("traced", [False, True], ids=["concrete", "traced"])
@pytest.mark.parametrize(("fan_in", "sparsity"), MIDDLE + FEW)
def test_larger_fan_in_masks_are_exact_uniform_and_independent(fan_in, sparsity, traced):
    # Every check of this module at once (the subsets check needs binom(F, k) <= 64, so it is
    # not among them). The traced draws use other keys than the concrete ones: the same key gives
    # the same mask bit for bit (test_determinism.py), so they are a second, independent sample.
    k = sparseinit.num_zeros(sparsity, fan_in, "ceil")
    seed = 100 + 10 * (MIDDLE + FEW).index((fan_in, sparsity)) + traced
    zeros = _library_zeros(fan_in, sparsity, traced, seed)
    assert zeros.shape == (_draws_for(fan_in), NEURONS, fan_in)
    pvalues = _pvalues(zeros, k)
    assert _failed(pvalues) == set(), pvalues
