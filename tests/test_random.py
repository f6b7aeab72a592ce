"""The written-out threefry-2x32: bit for bit the words ``jax.random`` draws from the same key.

Every weight of the library depends on these words, so equality is checked exactly, over shapes
whose element counts are odd, even and ragged, under ``jit`` and ``vmap``, and for the counter
pairs the correction's proposals use, against JAX's own threefry primitive. Keys or settings the
module does not handle must go to ``jax.random`` itself. On CPU, a mask's compiled program must
hash each random word once, not once per consumer.
"""

import chex
import jax
import jax.numpy as jnp
import pytest
from jax.extend.random import threefry2x32_p

from sparseinit import _random
from tests.conftest import X64

SHAPES = [(), (1,), (7,), (3, 5), (196, 256), (2, 3, 4, 5), (0, 4), (9, 10)]


def _same(a: jax.Array, b: jax.Array) -> None:
    # Equal element for element, with the same dtype and shape.
    chex.assert_trees_all_equal(a, b, strict=True)


@pytest.mark.parametrize("shape", SHAPES)
def test_bits_are_jax_bits(shape):
    key = jax.random.key(42)
    _same(_random.bits(key, shape), jax.random.bits(key, shape, jnp.uint32))


@pytest.mark.skipif(not X64, reason="uint64 words need JAX_ENABLE_X64=1")
@pytest.mark.parametrize("shape", [(5,), (33, 7)])
def test_wide_bits_are_jax_bits(shape):
    key = jax.random.key(3)
    _same(_random.bits(key, shape, jnp.uint64), jax.random.bits(key, shape, jnp.uint64))


def test_bits_under_jit_and_vmap_over_keys():
    keys = jax.random.split(jax.random.key(0), 6)
    ours = jax.jit(jax.vmap(lambda k: _random.bits(k, (13, 8))))(keys)
    _same(ours, jax.vmap(lambda k: jax.random.bits(k, (13, 8), jnp.uint32))(keys))


def test_raw_key_data_is_the_typed_keys():
    # The same words for a key made by jax.random.key and one wrapped from PRNGKey's data.
    raw = jax.random.wrap_key_data(jax.random.PRNGKey(11))
    _same(_random.bits(raw, (4, 4)), _random.bits(jax.random.key(11), (4, 4)))


def test_words_hash_any_counter_pairs():
    # The words of counter pairs with a non-zero first counter, against JAX's own primitive.
    key = jax.random.key(9)
    k0, k1 = jax.random.key_data(key)
    x0 = (jnp.arange(40, dtype=jnp.uint32) * 7919).reshape(8, 5)
    x1 = (jnp.arange(40, dtype=jnp.uint32) + 3).reshape(8, 5)
    high, low = threefry2x32_p.bind(k0, k1, x0, x1)
    _same(_random.words(key, x0, x1), high ^ low)


def test_words_under_vmap_over_keys():
    keys = jax.random.split(jax.random.key(0), 3)
    x0 = jnp.full((4, 6), 5, jnp.uint32)
    x1 = jnp.arange(24, dtype=jnp.uint32).reshape(4, 6)
    ours = jax.vmap(lambda k: _random.words(k, x0, x1))(keys)
    _same(ours, jnp.stack([_random.words(k, x0, x1) for k in keys]))


def test_other_key_types_and_settings_go_to_jax_random():
    assert _random.applies(jax.random.key(0))
    assert not _random.applies(jax.random.key(0, impl="rbg"))
    assert not _random.applies(jax.random.key(0, impl="unsafe_rbg"))
    # Counters of 2**32 elements and more need the high word: left to jax.random.
    assert not _random.applies(jax.random.key(0), 2**32)
    with jax.threefry_partitionable(False):
        assert not _random.applies(jax.random.key(0))
        key = jax.random.key(1)
        _same(_random.bits(key, (5, 3)), jax.random.bits(key, (5, 3), jnp.uint32))
    rbg = jax.random.key(2, impl="rbg")
    _same(_random.bits(rbg, (5, 3)), jax.random.bits(rbg, (5, 3), jnp.uint32))


def test_hash_matches_the_published_test_vector():
    # Random123's known-answer test for threefry2x32 with 20 rounds: key and counter all zero.
    key = jax.random.wrap_key_data(jnp.zeros(2, jnp.uint32))
    zero = jnp.zeros((1,), jnp.uint32)
    high, low = _random.hash_pairs(key, zero, zero)
    assert (int(high[0]), int(low[0])) == (0x6B200159, 0x99BA4EFE)


def test_written_out_is_the_identity():
    # The maximum with zero changes no non-negative integer, the largest ones included.
    for values, dtype in (([0, 1, 2**32 - 1], jnp.uint32), ([0, 5, 2**31 - 1], jnp.int32)):
        x = jnp.asarray(values, dtype)
        _same(jax.jit(_random.written_out)(x), x)


def test_split_is_jax_randoms_split():
    for seed in range(4):
        key = jax.random.key(seed)
        _same(
            jax.random.key_data(jax.jit(lambda k: _random.split(k, 3))(key)),
            jax.random.key_data(jax.random.split(key, 3)),
        )
    rbg = jax.random.key(0, impl="rbg")
    _same(
        jax.random.key_data(_random.split(rbg, 3)),
        jax.random.key_data(jax.random.split(rbg, 3)),
    )
