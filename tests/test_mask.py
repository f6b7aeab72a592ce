"""The masks are exact, uniform and independent: statistical tests of where the zeros go.

Every test draws many masks (wide matrices, from a fixed list of keys) and asks whether they look
like independent uniformly random ``k``-subsets of each neuron's fan-in:

* every neuron has exactly ``k`` zeros;
* every position of a neuron's fan-in is zeroed equally often;
* for a tiny fan-in, every one of the ``binom(F, k)`` subsets is equally likely;
* the overlap of two neurons' zero sets (in the same matrix or in different ``batch_axis``
  slices) is hypergeometric, as it is for independent subsets.

The same checks run on deliberately wrong samplers (Bernoulli, with replacement, a random
cyclic window, one subset shared by all neurons, a biased sort) to show that each of them fails
at least the check it should, so a passing library is evidence, not an accident.

The keys are fixed, so every test is deterministic. Each p-value is compared with ``P_CUTOFF``:
a correct sampler fails one such check for one key choice with probability ``1e-4``, while the
wrong samplers below give p-values below ``1e-30`` at these sample sizes.
"""

import functools
import itertools
import math

import jax
import numpy as np
import pytest
from scipy import stats

import sparseinit

# A correct sampler falls below this for a given key with probability 1e-4; the wrong samplers
# of this module land many orders of magnitude below it, so the cutoff separates the two cases
# with a wide margin on both sides.
P_CUTOFF = 1e-4
# Mean tests: a correct sampler lies beyond 5 standard errors with probability below 1e-6.
Z_CUTOFF = 5.0


# ---- drawing many masks ------------------------------------------------------------------


def _keys(seed: int, n: int) -> list[jax.Array]:
    # Folding in the index is cheap; indexing a key array costs a dispatch per element.
    base = jax.random.key(seed)
    return [jax.random.fold_in(base, i) for i in range(n)]


@functools.cache
def _draw(init, shape: tuple[int, ...], draws: int, seed: int, weights: bool) -> np.ndarray:
    """``draws`` masks (``True`` = kept) of ``init`` on ``shape``, one per fixed key.

    A Python loop over keys runs the one compiled builder of ``shape`` again and again; a
    ``vmap`` over keys would compile a batched builder, several times slower to compile than
    these draws take to run (``vmap`` gives the same masks: see ``test_determinism.py``).
    """
    keys = _keys(seed, draws)
    if weights:
        out = [np.asarray(init(k, shape)) != 0 for k in keys]
    else:
        out = [np.asarray(init.mask(k, shape)) for k in keys]
    return np.stack(out)


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
    """Chi-square p-value that every position of every neuron is zeroed equally often.

    For a uniform ``k``-subset of ``F`` positions the zero indicators have variance
    ``p (1 - p)`` with ``p = k / F`` and pairwise covariance ``-p (1 - p) / (F - 1)`` (sampling
    without replacement), so with ``D`` draws the position counts ``O`` of one neuron satisfy
    ``sum((O - D p)**2) / (D p (1 - p) F / (F - 1)) ~ chi2(F - 1)``. Neurons are independent:
    their statistics add up, as do the degrees of freedom.
    """
    draws, neurons, fan_in = zeros.shape
    p = zeros.mean()
    if p in (0.0, 1.0):
        return 1.0
    observed = zeros.sum(axis=0)
    variance = draws * p * (1 - p) * fan_in / (fan_in - 1)
    statistic = float(((observed - draws * p) ** 2).sum() / variance)
    return float(stats.chi2.sf(statistic, neurons * (fan_in - 1)))


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


def _overlaps(zeros: np.ndarray, pairs: list[tuple[int, int]]) -> np.ndarray:
    return np.concatenate([(zeros[:, a] & zeros[:, b]).sum(axis=-1) for a, b in pairs])


def _overlap_pvalue(zeros: np.ndarray, k: int, pairs: list[tuple[int, int]]) -> float:
    """Chi-square p-value that the overlaps of the given neuron pairs are hypergeometric.

    The pairs must be disjoint, so that their overlaps are independent samples.
    """
    fan_in = zeros.shape[-1]
    overlap = _overlaps(zeros, pairs)
    law = stats.hypergeom(fan_in, k, k)
    support = np.arange(k + 1)
    observed = np.array([(overlap == v).sum() for v in support])
    if observed.sum() != overlap.size:
        return 0.0
    obs, exp = _merge_small_bins(observed, overlap.size * law.pmf(support))
    if obs.size < 2:
        return 1.0
    return float(stats.chisquare(obs, exp * obs.sum() / exp.sum()).pvalue)


def _overlap_mean_z(zeros: np.ndarray, k: int, pairs: list[tuple[int, int]]) -> float:
    """Standard score of the mean overlap against the hypergeometric mean ``k**2 / F``."""
    fan_in = zeros.shape[-1]
    overlap = _overlaps(zeros, pairs)
    law = stats.hypergeom(fan_in, k, k)
    if law.std() == 0:
        return 0.0 if np.all(overlap == law.mean()) else math.inf
    return float((overlap.mean() - law.mean()) / (law.std() / math.sqrt(overlap.size)))


def _disjoint_pairs(neurons: int) -> list[tuple[int, int]]:
    return [(i, i + 1) for i in range(0, neurons - 1, 2)]


def _failed_checks(zeros: np.ndarray, k: int, pairs=None) -> set[str]:
    """The checks that ``zeros`` (``(draws, neurons, fan_in)``) fails; empty if it passes."""
    pairs = _disjoint_pairs(zeros.shape[1]) if pairs is None else pairs
    failed = set()
    if not _exact_count(zeros, k):
        failed.add("count")
    if _position_pvalue(zeros) < P_CUTOFF:
        failed.add("positions")
    if math.comb(zeros.shape[-1], k) <= 64 and _subset_pvalue(zeros, k) < P_CUTOFF:
        failed.add("subsets")
    if pairs and (
        _overlap_pvalue(zeros, k, pairs) < P_CUTOFF
        or abs(_overlap_mean_z(zeros, k, pairs)) > Z_CUTOFF
    ):
        failed.add("independence")
    return failed


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


# ---- the library -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sparsity", "k"),
    [
        (0.25, 5),  # zeros are the smaller set: the sampler places zeros in dense values
        (0.8, 16),  # kept weights are the smaller set: the sampler places the kept weights
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
        (0.4, 2, 3),  # 2 zeros of 5 are placed
        (0.6, 3, 7),  # 2 kept weights of 5 are placed
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
        (0.99, 3, 17),  # ceil(19.8) = 20 zeros capped at 17: the 3 kept weights are placed
        (0.95, 16, 4),  # 19 zeros capped at 4: the zeros are placed
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
