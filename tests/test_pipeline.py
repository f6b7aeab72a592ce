"""The plan of a call: the start's rate (part of the output's definition), the size limits, and
zero-size shapes, for which nothing is drawn and no base initializer runs."""

import math
import time
from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sparseinit
from sparseinit import _mask

# ---- the start's rate: a fixed rule -----------------------------------------------------


def rule(fan_in: int, zeros: int) -> int:
    """The rate rule, written from its statement with exact fractions."""
    if min(zeros, fan_in - zeros) <= fan_in // 8:
        return 0 if 2 * zeros <= fan_in else 256
    return math.floor(Fraction(256 * zeros, fan_in) + Fraction(1, 2))


LARGE = (150_528, 1_000_000, 2**31 - 1)


@pytest.mark.parametrize("fan_in", [*range(1, 130), 255, 256, 257, 784, 1000, 1024])
def test_rate_is_the_rule_for_every_count(fan_in):
    got = [_mask.start_rate(fan_in, k) for k in range(fan_in + 1)]
    assert got == [rule(fan_in, k) for k in range(fan_in + 1)]


@pytest.mark.parametrize("fan_in", LARGE)
def test_rate_is_the_rule_at_large_fan_ins(fan_in):
    counts = np.unique(np.linspace(0, fan_in, 501).astype(np.int64)).tolist()
    counts += [fan_in // 8, fan_in // 8 + 1, fan_in - fan_in // 8 - 1, fan_in - fan_in // 8]
    assert [_mask.start_rate(fan_in, k) for k in counts] == [rule(fan_in, k) for k in counts]


@pytest.mark.parametrize("fan_in", [1, 7, 8, 9, 100, 784, 1025, *LARGE])
def test_traced_rate_equals_the_concrete_rate(fan_in):
    # A traced count must give the concrete count's rate, or a jit sweep's masks would differ
    # from the eager ones: the traced rule is integer long division, exact at every fan-in.
    counts = np.unique(np.linspace(0, fan_in, 257).astype(np.int64))
    counts = np.unique(np.concatenate([counts, [fan_in // 8, fan_in // 8 + 1, fan_in // 2]]))
    traced = jax.jit(jax.vmap(lambda k: _mask.start_rate(fan_in, k)))(
        jnp.asarray(counts, jnp.int32)
    )
    assert np.asarray(traced).tolist() == [_mask.start_rate(fan_in, int(k)) for k in counts]


def test_rate_pins():
    # Changing any of these changes which mask a key gives: a change of outputs (CHANGELOG).
    pins = {(784, 706): 256, (784, 79): 0, (784, 392): 128, (784, 236): 77, (784, 549): 179}
    pins |= {(100, 30): 77, (64, 32): 128, (1024, 717): 179, (150_528, 45_159): 77}
    assert {fk: _mask.start_rate(*fk) for fk in pins} == pins


def test_planning_is_constant_time_at_any_fan_in():
    # No host structure grows with the fan-in: planning a fan-in of 2**31 - 1 takes as long
    # as planning 784 (a table of fan_in + 1 rows took seconds at 10**6 and failed above).
    start = time.perf_counter()
    for fan_in in (784, 10**6, 2**31 - 1):
        for k in (0, fan_in // 3, fan_in // 2, fan_in - 1, fan_in):
            assert _mask.round_chunks(fan_in, 64, k) >= 1
        assert _mask.round_chunks(fan_in, 64, None) >= 1
    assert time.perf_counter() - start < 0.5


def test_large_fan_in_is_exact_and_cheap():
    shape = (1_000_000, 4)
    for sparsity in (0.5, 0.9):
        mask = sparseinit.sparse(sparsity).mask(jax.random.key(0), shape)
        kept = np.asarray(mask.sum(axis=0)).tolist()
        assert kept == [shape[0] - sparseinit.num_zeros(sparsity, shape[0])] * shape[1]


# ---- sizes the sampler cannot index -----------------------------------------------------

INITS = {
    "sparse": sparseinit.sparse(0.5),
    "sparsify": sparseinit.sparsify(jax.nn.initializers.lecun_normal(), 0.5),
    "martens": sparseinit.martens(3),
    "torch_sparse": sparseinit.torch_sparse(0.5),
}


@pytest.mark.parametrize("name", INITS)
@pytest.mark.parametrize("shape", [(2**63, 2), (2**40, 3), (2**31, 2), (3, 2**31)])
def test_shape_beyond_the_limit_names_the_shape_and_the_limit(name, shape):
    init = INITS[name]
    if name == "torch_sparse":
        shape = shape[::-1]  # its neurons are the rows: the same two limits, swapped
    pattern = rf"^{name}: shape \({shape[0]}, {shape[1]}\) has a .* 2,147,483,647 \(2\*\*31 - 1\)"
    key = jax.random.key(0)
    for call in (
        lambda: init(key, shape, jnp.float32),
        lambda: init.mask(key, shape),
        lambda: init.condensed(key, shape),
    ):
        with pytest.raises(ValueError, match=pattern):
            call()


def test_sparse_init_beyond_the_limit():
    with pytest.raises(ValueError, match=r"^sparse_init: shape \(2, 2147483648\) has a fan-in"):
        sparseinit.sparse_init(jax.random.key(0), (2, 2**31))


# ---- zero-size shapes --------------------------------------------------------------------


class Refuses:
    """A base initializer that fails if it is ever run (abstract evaluation is allowed)."""

    def __init__(self, dtype=jnp.float32):
        self.dtype = dtype

    def __call__(self, key, shape, dtype=None):
        if not isinstance(key, jax.core.Tracer):
            raise AssertionError(f"ran on {shape}")
        if 0 in shape:
            raise ZeroDivisionError("fan-in 0, as jax's own initializers raise")
        return jnp.zeros(shape, self.dtype if dtype is None else dtype)


@pytest.mark.parametrize("shape", [(0, 3), (3, 0), (0, 0), (2, 0, 4, 5)])
def test_zero_size_gives_an_empty_array_without_running_a_base_initializer(shape):
    key = jax.random.key(0)
    lecun = jax.nn.initializers.lecun_normal()
    default = jnp.dtype(jnp.result_type(float))  # float64 with JAX_ENABLE_X64=1
    for init, dtype in [
        (sparseinit.sparse(0.5), default),
        (sparseinit.martens(2, dtype=jnp.bfloat16), jnp.bfloat16),
        (sparseinit.sparsify(lecun, 0.5), default),
        (sparseinit.sparsify(Refuses(jnp.bfloat16), 0.5), jnp.bfloat16),
    ]:
        out = init(key, shape)
        assert (out.shape, out.dtype) == (shape, dtype)
        assert init(key, shape, jnp.float16).dtype == jnp.float16
        assert init.mask(key, shape).shape == shape
    if len(shape) == 2:
        empty = sparseinit.torch_sparse(0.5)(key, shape)
        assert (empty.shape, empty.dtype) == (shape, default)
