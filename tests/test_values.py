"""The kept weights: their distribution and scale, and that none of them is ever exactly zero.

Distribution tests compare the kept weights of one wide matrix (thousands of independent draws,
fixed key) with the stated law through scipy's Kolmogorov-Smirnov test and moment checks:

* KS p-values are compared with ``P_CUTOFF = 1e-4``: a correct sampler falls below it for a
  given key with probability 1e-4, while a wrong scale (the ``sqrt(3)`` of ``lecun_uniform``, a
  missing ``rescale`` factor) gives p-values below 1e-30 at these sizes, as the tests show.
* Moments must lie within ``Z_CUTOFF = 5`` standard errors (probability below 1e-6 for a
  correct sampler), far tighter than the factors a scale bug would introduce.

The support tests check ``init.mask(key, shape) == (init(key, shape, dtype) != 0)`` in every
float dtype, including weights that underflow (a ``scale`` of ``1e-30`` in float16) and base
initializers that return exact zeros.
"""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import sparseinit
from sparseinit import _values
from tests.conftest import X64

P_CUTOFF = 1e-4
Z_CUTOFF = 5.0
# The standard deviation of a unit normal truncated to (-2, 2).
TRUNCATED_STD = stats.truncnorm(-2, 2).std()

SHAPE = (256, 128)  # fan-in 256: b = scale / 16
FAN_IN = SHAPE[0]
KEY = 0

FLOAT_DTYPES = [
    jnp.float16,
    jnp.bfloat16,
    jnp.float32,
    pytest.param(
        jnp.float64, marks=pytest.mark.skipif(not X64, reason="float64 needs JAX_ENABLE_X64=1")
    ),
]


@functools.cache
def _weights(init, shape=SHAPE, dtype=None, seed=KEY) -> np.ndarray:
    return np.asarray(init(jax.random.key(seed), shape, dtype))


@functools.cache
def _mask(init, shape=SHAPE, seed=KEY) -> np.ndarray:
    return np.asarray(init.mask(jax.random.key(seed), shape))


def _kept(w: np.ndarray) -> np.ndarray:
    return w[w != 0].astype(np.float64)


def _ks(values: np.ndarray, law) -> float:
    return float(stats.kstest(values, law.cdf).pvalue)


def _std_within(values: np.ndarray, std: float) -> bool:
    # Standard error of a sample std is about std / sqrt(2 n) for a normal; lighter tails (the
    # uniform, the truncated normal) only make it smaller, so this bound is conservative.
    return abs(values.std() - std) <= Z_CUTOFF * std / math.sqrt(2 * values.size)


def _mean_within(values: np.ndarray, std: float) -> bool:
    return abs(values.mean()) <= Z_CUTOFF * std / math.sqrt(values.size)


# ---- distributions and scales ------------------------------------------------------------

# Sparsity 0.5 corrects a Bernoulli start; 0.75 places the kept cells on an all-zero start. Both
# paths draw the values the same way, after the support, but each law is checked on at least
# one of each, so that a path whose support depended on the values would show.
UNIFORM = sparseinit.sparse(0.5, scale=2.0)
UNIFORM_PLACED = sparseinit.sparse(0.75, scale=2.0)


@pytest.mark.parametrize(("init", "kept"), [(UNIFORM, 128), (UNIFORM_PLACED, 64)])
def test_uniform_kept_weights_are_uniform_below_the_bound(init, kept):
    b = 2.0 / math.sqrt(FAN_IN)
    values = _kept(_weights(init))
    assert values.size == kept * SHAPE[1]
    assert np.all(np.abs(values) < b)
    assert np.abs(values).max() > 0.99 * b  # the whole interval is used, not a narrower one
    assert _ks(values, stats.uniform(-b, 2 * b)) >= P_CUTOFF
    # The test can tell the published bound from lecun_uniform's sqrt(3) wider one.
    wide = math.sqrt(3) * b
    assert _ks(values, stats.uniform(-wide, 2 * wide)) < P_CUTOFF


def test_normal_kept_weights_are_normal_with_std_b():
    # Dense values with zeros placed among them; the truncated normal below covers the path
    # that places kept weights one by one.
    b = 2.0 / math.sqrt(FAN_IN)
    values = _kept(_weights(sparseinit.sparse(0.5, distribution="normal", scale=2.0)))
    assert values.size == 128 * SHAPE[1]
    assert _mean_within(values, b)
    assert _std_within(values, b)
    assert _ks(values, stats.norm(0, b)) >= P_CUTOFF
    assert _ks(values, stats.norm(0, 1.1 * b)) < P_CUTOFF


def test_truncated_normal_is_bounded_with_std_b():
    # jax's correction: the untruncated std is b / 0.8796..., so that the truncated std is b.
    b = 2.0 / math.sqrt(FAN_IN)
    init = sparseinit.sparse(0.75, distribution="truncated_normal", scale=2.0)
    values = _kept(_weights(init))
    untruncated = b / TRUNCATED_STD
    # One float32 rounding of slack on the bound.
    assert np.all(np.abs(values) <= 2 * untruncated * (1 + 2**-22))
    assert np.abs(values).max() > 0.98 * 2 * untruncated
    assert _mean_within(values, b)
    assert _std_within(values, b)
    assert _ks(values, stats.truncnorm(-2, 2, scale=untruncated)) >= P_CUTOFF
    # Without the correction (std b / 0.88 too small) the test fails.
    assert _ks(values, stats.truncnorm(-2, 2, scale=b)) < P_CUTOFF


def test_martens_nonzero_weights_are_normal_with_std():
    # 15 non-zero weights for each of 512 neurons: 7680 draws of N(0, 0.5^2).
    values = _kept(_weights(sparseinit.martens(15, std=0.5), (64, 512)))
    assert values.size == 15 * 512
    assert _mean_within(values, 0.5)
    assert _std_within(values, 0.5)
    assert _ks(values, stats.norm(0, 0.5)) >= P_CUTOFF


def test_torch_sparse_nonzero_weights_are_normal_with_std():
    # The default std is PyTorch's 0.01; half of each (in, out) row is kept.
    values = _kept(_weights(sparseinit.torch_sparse(0.5), (128, 128)))
    assert values.size == 64 * 128
    assert _mean_within(values, 0.01)
    assert _std_within(values, 0.01)
    assert _ks(values, stats.norm(0, 0.01)) >= P_CUTOFF


@pytest.mark.parametrize("sparsity", [0.25, 0.75])
def test_rescale_multiplies_by_sqrt_fan_in_over_kept(sparsity):
    zeros = sparseinit.num_zeros(sparsity, FAN_IN, "ceil")
    kept = FAN_IN - zeros
    factor = math.sqrt(FAN_IN / kept)  # 1.155 or 2
    b = 1.0 / math.sqrt(FAN_IN)
    values = _kept(_weights(sparseinit.sparse(sparsity, rescale=True)))
    assert values.size == kept * SHAPE[1]
    assert np.all(np.abs(values) < factor * b)
    # The variance of U(-c, c) is c^2 / 3; the relative standard error of a sample variance
    # of a uniform is sqrt(0.8 / n) (its kurtosis is 1.8), under 0.012 here, while a missing
    # factor would be off by 25% or 75%.
    variance = b**2 / 3 * FAN_IN / kept
    assert abs(values.var() / variance - 1) <= Z_CUTOFF * math.sqrt(0.8 / values.size)
    assert _ks(values, stats.uniform(-factor * b, 2 * factor * b)) >= P_CUTOFF


def test_sparsify_rescale_multiplies_base_values_exactly():
    # A constant base makes the factor visible exactly: sqrt(256 / 64) = 2.
    init = sparseinit.sparsify(jax.nn.initializers.constant(1.0), 0.75, rescale=True)
    values = _kept(_weights(init))
    assert values.size == 64 * SHAPE[1]
    np.testing.assert_array_equal(values, 2.0)


# ---- supports: a kept weight is never exactly zero ---------------------------------------


def _assert_support_is_mask(w: np.ndarray, mask: np.ndarray, kept_per_neuron: int) -> None:
    assert mask.dtype == np.bool_
    np.testing.assert_array_equal(w != 0, mask)
    np.testing.assert_array_equal(mask.sum(axis=0), kept_per_neuron)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_sparse_kept_weights_are_never_zero_and_the_mask_ignores_dtype(dtype):
    # A plain U(-1, 1) drawn in the weights' dtype sits on a grid that contains 0: about 1
    # draw in 128 is 0 in bfloat16 (some 128 of these 16384 kept weights) and 1 in 1024 in
    # float16 (some 16).
    w = _weights(UNIFORM, dtype=dtype)
    assert w.dtype == np.dtype(dtype)
    _assert_support_is_mask(w, _mask(UNIFORM), 128)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_sparsify_makes_base_zeros_nonzero(dtype):
    # A base initializer that returns only zeros: every kept weight would be 0 without care.
    init = sparseinit.sparsify(jax.nn.initializers.zeros, 0.5)
    w = _weights(init, dtype=dtype)
    assert w.dtype == np.dtype(dtype)
    _assert_support_is_mask(w, _mask(init), 128)
    kept = w[w != 0]
    assert np.all(kept == np.asarray(jnp.finfo(dtype).tiny, dtype))  # the smallest normal


@pytest.mark.parametrize(
    ("init", "support_of"),
    [
        # Values underflow to zero in float16 on both code paths; the supports must still be
        # those of the same sparsity at an ordinary scale (the mask ignores values and dtype).
        (sparseinit.sparse(0.5, scale=1e-30), UNIFORM),
        (sparseinit.sparse(0.75, distribution="normal", scale=1e-30), UNIFORM_PLACED),
    ],
)
def test_tiny_scale_in_float16_keeps_the_support(init, support_of):
    w = _weights(init, dtype=jnp.float16)
    assert w.dtype == np.float16
    np.testing.assert_array_equal(w != 0, _weights(support_of) != 0)
    kept = w[w != 0].astype(np.float64)
    assert np.all(np.abs(kept) == np.finfo(np.float16).tiny)
    # Signs survive the underflow: both appear, about equally often.
    assert stats.binomtest(int((kept > 0).sum()), kept.size).pvalue >= P_CUTOFF


@pytest.mark.parametrize(
    ("init", "shape", "kept_per_neuron"),
    [
        (sparseinit.martens(3, std=1e-30), (64, 32), 3),
        (sparseinit.torch_sparse(0.5, std=1e-30), (32, 64), 32),  # neurons are the rows
    ],
)
def test_martens_and_torch_sparse_tiny_std_in_float16_keep_the_support(
    init, shape, kept_per_neuron
):
    w = _weights(init, shape, jnp.float16)
    mask = _mask(init, shape)
    if isinstance(init, sparseinit.TorchSparse):
        w, mask = w.T, mask.T
    _assert_support_is_mask(w, mask, kept_per_neuron)


# ---- the internal sampler ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("dtype", "precision"),
    [
        (np.float32, 23),
        pytest.param(
            np.float64,
            52,
            marks=pytest.mark.skipif(not X64, reason="float64 needs JAX_ENABLE_X64=1"),
        ),
    ],
)
def test_symmetric_uniform_is_never_zero_and_symmetric(dtype, precision):
    x = np.asarray(_values.symmetric_uniform(jax.random.key(3), (1 << 16,), np.dtype(dtype)))
    assert x.dtype == dtype
    assert np.all(x != 0)
    assert np.all(np.abs(x) < 1)
    # Every value is an odd multiple of 2**-precision inside (-1, 1): a grid that is its own
    # mirror image and excludes zero.
    numerators = x.astype(np.float64) * 2.0**precision
    np.testing.assert_array_equal(numerators, np.round(numerators))
    np.testing.assert_array_equal(np.abs(np.fmod(numerators, 2)), 1)
    # Draws are uniform on that grid: signs balanced, and U(-1, 1) overall.
    assert stats.binomtest(int((x > 0).sum()), x.size).pvalue >= P_CUTOFF
    assert _ks(x.astype(np.float64), stats.uniform(-1, 2)) >= P_CUTOFF
    assert stats.ks_2samp(x[x > 0], -x[x < 0]).pvalue >= P_CUTOFF


@pytest.mark.parametrize(
    "dtype",
    [
        np.float32,
        pytest.param(
            np.float64, marks=pytest.mark.skipif(not X64, reason="float64 needs JAX_ENABLE_X64=1")
        ),
    ],
)
@pytest.mark.parametrize("impl", ["threefry2x32", "rbg"])
@pytest.mark.parametrize("shape", [(7,), (3, 5, 9), (256, 128)])
def test_normal_draws_are_jax_randoms_bit_for_bit(dtype, impl, shape):
    # The normal laws are computed from the written-out words with JAX's own steps; any
    # difference in a step (the uniform's open end, the bounds of the truncation, the clamp)
    # changes some of these thousands of values in the last bit.
    key = jax.random.key(11, impl=impl)
    dtype = np.dtype(dtype)
    normal = jax.jit(lambda k: _values.draw(k, shape, "normal", dtype))(key)
    truncated = jax.jit(lambda k: _values.draw(k, shape, "truncated_normal", dtype))(key)
    expected_normal = jax.jit(lambda k: jax.random.normal(k, shape, dtype))(key)
    expected_truncated = jax.jit(
        lambda k: (
            jax.random.truncated_normal(k, -2.0, 2.0, shape, dtype)
            / np.asarray(_values.TRUNCATED_NORMAL_STD, dtype)
        )
    )(key)
    np.testing.assert_array_equal(np.asarray(normal), np.asarray(expected_normal), strict=True)
    np.testing.assert_array_equal(
        np.asarray(truncated), np.asarray(expected_truncated), strict=True
    )
