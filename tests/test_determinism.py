"""Determinism: the same inputs give bit-identical weights, however the call is transformed.

Covered: eager versus ``jax.jit`` (one ``chex.TestCase`` with jit and non-jit variants),
``jax.vmap`` over keys versus a loop of single calls, raw versus typed keys, every PRNG
implementation, a traced sparsity under ``jit`` and ``vmap`` (compiled once, equal to the
concrete values), and the independence of the mask from the values' parameters.
"""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl.testing import parameterized

import sparseinit

SHAPE = (16, 8)  # fan-in 16, 8 neurons
FAN_IN = SHAPE[0]

# Sparsity 0.75 places the 4 kept weights one by one; 0.25 places 4 zeros among dense values.
SPARSE = sparseinit.sparse(0.75)
SPARSE_DENSE_PATH = sparseinit.sparse(0.25, distribution="normal")
SPARSIFIED = sparseinit.sparsify(jax.nn.initializers.lecun_normal(), 0.75)

INITIALIZERS = [
    ("sparse", SPARSE),
    ("sparse_dense_path", SPARSE_DENSE_PATH),
    ("sparsify", SPARSIFIED),
]


def _default_float() -> np.dtype:
    return jax.dtypes.canonicalize_dtype(jnp.float64)


def _assert_exact_zeros(w, zeros: int) -> None:
    np.testing.assert_array_equal((np.asarray(w) == 0).sum(axis=0), zeros)


class JitEquivalenceTest(chex.TestCase):
    """Eager and jitted calls give the same bits."""

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(*INITIALIZERS)
    def test_weights(self, init):
        key = jax.random.key(0)
        expected = init(key, SHAPE)
        weights = self.variant(lambda k: init(k, SHAPE))(key)
        chex.assert_shape(weights, SHAPE)
        chex.assert_type(weights, _default_float())
        chex.assert_trees_all_equal(weights, expected)
        _assert_exact_zeros(weights, 12 if init is not SPARSE_DENSE_PATH else 4)

    @chex.variants(with_jit=True, without_jit=True)
    def test_mask(self):
        key = jax.random.key(0)
        mask = self.variant(lambda k: SPARSE.mask(k, SHAPE))(key)
        chex.assert_shape(mask, SHAPE)
        chex.assert_type(mask, bool)
        chex.assert_trees_all_equal(mask, SPARSE(key, SHAPE) != 0)

    @chex.variants(with_jit=True, without_jit=True)
    def test_raw_key(self):
        # A raw uint32[2] key is wrapped with the default implementation, inside jit too.
        raw = jax.random.PRNGKey(0)
        weights = self.variant(lambda k: SPARSE(k, SHAPE))(raw)
        chex.assert_trees_all_equal(weights, SPARSE(jax.random.wrap_key_data(raw), SHAPE))


def test_repeated_eager_calls_are_identical_and_keys_matter():
    key = jax.random.key(0)
    first = np.asarray(SPARSE(key, SHAPE))
    np.testing.assert_array_equal(first, np.asarray(SPARSE(key, SHAPE)))
    other = np.asarray(SPARSE(jax.random.key(1), SHAPE))
    assert not np.array_equal(first != 0, other != 0)
    assert not np.array_equal(first, other)


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda k: SPARSE(k, SHAPE), id="sparse"),
        pytest.param(lambda k: SPARSIFIED(k, SHAPE), id="sparsify"),
        pytest.param(lambda k: SPARSE.mask(k, SHAPE), id="mask"),
    ],
)
def test_vmap_over_keys_equals_a_loop_of_single_calls(call):
    keys = jax.random.split(jax.random.key(7), 4)
    batched = jax.vmap(call)(keys)
    chex.assert_shape(batched, (4, *SHAPE))
    looped = jnp.stack([call(key) for key in keys])
    chex.assert_trees_all_equal(batched, looped)
    # Four keys, four different results: the batch is not one key repeated.
    assert len({np.asarray(b).tobytes() for b in batched}) == 4


def test_raw_keys_equal_wrapped_keys_eagerly_and_under_vmap():
    raw = jax.random.PRNGKey(0)
    chex.assert_trees_all_equal(SPARSE(raw, SHAPE), SPARSE(jax.random.wrap_key_data(raw), SHAPE))
    # The default implementation is threefry, so a typed key(0) is the same key.
    chex.assert_trees_all_equal(SPARSE(raw, SHAPE), SPARSE(jax.random.key(0), SHAPE))
    raws = jax.vmap(jax.random.PRNGKey)(jnp.arange(4))  # 4 keys, as above: no new compile
    batched = jax.vmap(lambda k: SPARSE(k, SHAPE))(raws)
    typed = jax.vmap(lambda k: SPARSE(k, SHAPE))(jax.random.wrap_key_data(raws))
    chex.assert_trees_all_equal(batched, typed)


@pytest.mark.parametrize("impl", ["threefry2x32", "rbg", "unsafe_rbg"])
def test_every_prng_implementation_gives_exact_deterministic_masks(impl):
    key = jax.random.key(3, impl=impl)
    weights = SPARSE(key, SHAPE)
    chex.assert_shape(weights, SHAPE)
    _assert_exact_zeros(weights, 12)
    chex.assert_trees_all_equal(weights, SPARSE(jax.random.key(3, impl=impl), SHAPE))
    other = SPARSE(jax.random.key(4, impl=impl), SHAPE)
    assert not np.array_equal(np.asarray(weights), np.asarray(other))


# Both sides of every boundary: dense, the two sampler paths (8 zeros of 16 are placed as
# zeros, 9 as kept weights), and all zeros.
GRID = [0.0, 0.1, 0.25, 0.5, 0.51, 0.75, 0.9, 1.0]


# About 20 s of compilation (the batched sweep and one builder per concrete value): run once,
# not again in the x64 rerun, which keeps the rescaled traced test below.
@pytest.mark.slow
def test_traced_sparsity_compiles_once_and_equals_concrete_values():
    traces = []

    def one(sparsity, key):
        traces.append(sparsity)
        return sparseinit.sparse(sparsity)(key, SHAPE)

    sweep = jax.jit(jax.vmap(jax.vmap(one, in_axes=(None, 0)), in_axes=(0, None)))
    keys = jax.random.split(jax.random.key(11), 3)
    # Traced as float32; the concrete values below are Python floats.
    traced = jnp.asarray(GRID, jnp.float32)
    weights = sweep(traced, keys)
    # The same shapes again, other values: no new trace.
    sweep(traced[::-1], jax.random.split(jax.random.key(12), 3))
    assert len(traces) == 1
    chex.assert_shape(weights, (len(GRID), 3, *SHAPE))
    for i, sparsity in enumerate(GRID):
        init = sparseinit.sparse(sparsity)
        for j in range(3):
            chex.assert_trees_all_equal(weights[i, j], init(keys[j], SHAPE))


def test_traced_sparsity_with_rescale_equals_concrete_values():
    # The factor sqrt(fan_in / kept) comes from the traced count; the dense path, the
    # kept-weights path and a neuron with no kept weight (which stays zero). One jit, not a
    # second sweep: each sweep costs several seconds to compile.
    traces = []

    def one(sparsity, key):
        traces.append(sparsity)
        return sparseinit.sparse(sparsity, rescale=True)(key, SHAPE)

    jitted = jax.jit(one)
    key = jax.random.key(13)
    for sparsity in [0.1, 0.51, 1.0]:
        weights = jitted(jnp.float32(sparsity), key)
        expected = sparseinit.sparse(sparsity, rescale=True)(key, SHAPE)
        chex.assert_trees_all_equal(weights, expected)
    assert len(traces) == 1
    np.testing.assert_array_equal(np.asarray(weights), 0)


@pytest.mark.parametrize(
    ("init", "other"),
    [
        # Kept weights placed one by one: SparseInit's uniform values or lecun_normal's.
        (SPARSE, SPARSIFIED),
        # Zeros placed among dense values: uniform or normal.
        (sparseinit.sparse(0.25), SPARSE_DENSE_PATH),
    ],
)
def test_mask_does_not_depend_on_the_values(init, other):
    # Values and mask come from independent sub-keys: with the same key, the distribution or
    # the base initializer changes the values only.
    key = jax.random.key(5)
    weights = np.asarray(init(key, SHAPE))
    others = np.asarray(other(key, SHAPE))
    np.testing.assert_array_equal(weights != 0, others != 0)
    assert not np.any(weights[weights != 0] == others[others != 0])
