"""The count of zeros: exactly ``R(sparsity * fan_in)`` per neuron, read as a decimal.

Counts are checked against exact rational arithmetic (``fractions.Fraction``), independently of
the library's float32 computation, and on real initializer outputs for every layout the
contract names: Dense and Conv kernels, other in/out axes, sequences of axes, batch axes.
"""

import math
from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sparseinit
from sparseinit._count import num_zeros_traced
from tests.conftest import zeros_per_neuron

ROUNDINGS = ("ceil", "round", "floor")

# The 0.01 grid of sparsities. str(k / 100) is the decimal the user typed ("0.07"), so
# Fraction(str(s)) is exactly k/100: the value the decimal rule says the count is taken from.
GRID = tuple(k / 100 for k in range(101))

# Every fan-in up to 32 (where each grid step changes the product by less than one, so every
# rounding boundary is visited), then the usual layer widths, Conv fan-ins and powers of two
# up to 1024, and their neighbours (odd, prime, one below a power of two).
FAN_INS = (
    *range(1, 33),
    37, 50, 63, 64, 97, 99, 100, 101, 127, 128, 144, 200, 255, 256, 288, 300, 333,
    500, 511, 512, 576, 640, 700, 768, 784, 999, 1000, 1023, 1024,
)  # fmt: skip


def exact_count(sparsity: float | str, fan_in: int, rounding: str) -> int:
    """``R(sparsity * fan_in)`` in exact decimal arithmetic."""
    product = Fraction(str(sparsity)) * fan_in
    if rounding == "ceil":
        return math.ceil(product)
    if rounding == "round":
        return math.floor(product + Fraction(1, 2))
    return math.floor(product)


def check_exact(w, zeros, out_axis=-1, batch_axis=(), mask=None):
    """Every neuron of ``w`` has exactly ``zeros`` zeros (and ``mask``, if given, is its support).

    The mask is checked only where it adds something: each ``init.mask`` call is one more
    compilation, and the suite's time is mostly compilation.
    """
    counts = zeros_per_neuron(w, out_axis, batch_axis)
    np.testing.assert_array_equal(counts, np.full_like(counts, zeros))
    if mask is not None:
        np.testing.assert_array_equal(np.asarray(mask), np.asarray(w) != 0)


# ---- the count function ---------------------------------------------------------------------


def test_grid_is_the_decimal_the_user_typed():
    assert all(Fraction(str(s)) == Fraction(k, 100) for k, s in enumerate(GRID))


@pytest.mark.parametrize("rounding", ROUNDINGS)
def test_num_zeros_decimal_rule_on_the_grid(rounding):
    got = [[sparseinit.num_zeros(s, n, rounding) for s in GRID] for n in FAN_INS]
    want = [[exact_count(s, n, rounding) for s in GRID] for n in FAN_INS]
    assert got == want


@pytest.mark.parametrize("rounding", ROUNDINGS)
def test_traced_float32_count_decimal_rule_on_the_grid(rounding):
    # One program for every fan-in, so the whole grid costs one compilation per rounding.
    @jax.jit
    def counts(sparsities):
        return jnp.stack(
            [jax.vmap(lambda s, n=n: num_zeros_traced(s, n, rounding))(sparsities) for n in FAN_INS]
        )

    got = np.asarray(counts(jnp.asarray(GRID, dtype=jnp.float32)))
    want = np.array([[exact_count(s, n, rounding) for s in GRID] for n in FAN_INS])
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(
    ("sparsity", "fan_in", "rounding", "zeros"),
    [
        (0.07, 100, "ceil", 7),  # binary: 7.000000000000001, whose ceil is 8
        (0.35, 10, "round", 4),  # binary: 3.4999999999999996, which rounds to 3
        (0.025, 100, "round", 3),  # a half, rounded up
        (0.29, 100, "floor", 29),  # binary: 28.999999999999996
        (0.57, 100, "floor", 57),  # binary: 56.99999999999999
        (0.9, 784, "ceil", 706),
        (0.9, 784, "floor", 705),
        (0.1, 3, "ceil", 1),
        (0.1, 3, "round", 0),
    ],
)
def test_num_zeros_known_values(sparsity, fan_in, rounding, zeros):
    assert sparseinit.num_zeros(sparsity, fan_in, rounding) == zeros
    traced = jax.jit(lambda s: num_zeros_traced(s, fan_in, rounding))(jnp.float32(sparsity))
    assert int(traced) == zeros


@pytest.mark.parametrize("rounding", ROUNDINGS)
@pytest.mark.parametrize("fan_in", [1, 2, 7, 1024])
def test_num_zeros_extremes(rounding, fan_in):
    assert sparseinit.num_zeros(0.0, fan_in, rounding) == 0
    assert sparseinit.num_zeros(1.0, fan_in, rounding) == fan_in


# ---- counts of real initializer outputs ----------------------------------------------------


def test_traced_sparsity_grid_gives_the_decimal_counts(key):
    # The whole grid under one jit(vmap): the count computed inside the initializer, traced.
    fan_in = 100
    init_mask = jax.jit(jax.vmap(lambda s: sparseinit.sparse(s).mask(key, (fan_in, 3))))
    masks = np.asarray(init_mask(jnp.asarray(GRID, dtype=jnp.float32)))
    zeros = (~masks).sum(axis=1)  # (grid, neurons)
    want = np.array([exact_count(s, fan_in, "ceil") for s in GRID])
    np.testing.assert_array_equal(zeros, np.repeat(want[:, None], 3, axis=1))
    assert zeros[7, 0] == 7


def test_dense_kernel(key):
    init = sparseinit.sparse(0.9)
    w = init(key, (784, 16))
    check_exact(w, 706, mask=init.mask(key, (784, 16)))


def test_conv_kernel_fan_in_is_receptive_field_times_inputs(key):
    shape = (3, 3, 16, 8)  # (h, w, in, out): fan-in 144
    init = sparseinit.sparse(0.3)
    w = init(key, shape)
    assert w.shape == shape
    check_exact(w, math.ceil(Fraction("0.3") * 144), mask=init.mask(key, shape))


@pytest.mark.parametrize(
    ("shape", "in_axis", "out_axis", "batch_axis", "fan_in", "rounding"),
    [
        ((6, 10), -1, -2, (), 10, "ceil"),  # rows are neurons, as in PyTorch's (out, in)
        ((10, 6), 0, 1, (), 10, "floor"),
        ((4, 3, 5, 2), 1, (0, 3), (), 15, "round"),  # two output axes; axis 2 is receptive field
        ((2, 3, 4, 5), (0, 1), (2, 3), (), 6, "ceil"),  # sequences of axes on both sides
        ((4, 10, 6), -2, -1, 0, 10, "round"),  # an ensemble: one weight matrix per batch index
        ((2, 3, 10, 6), 2, 3, (0, 1), 10, "floor"),
        ((3, 3, 10, 4), -2, 0, 1, 40, "ceil"),  # neurons on axes 0 and 1; fan-in 10 * 4
    ],
)
def test_axes(key, shape, in_axis, out_axis, batch_axis, fan_in, rounding):
    # 0.45 makes every product here an integer or a half, where the three roundings differ.
    sparsity = 0.45
    init = sparseinit.sparse(
        sparsity, rounding=rounding, in_axis=in_axis, out_axis=out_axis, batch_axis=batch_axis
    )
    w = init(key, shape)
    assert w.shape == shape
    check_exact(w, exact_count(sparsity, fan_in, rounding), out_axis, batch_axis)


def test_axes_mask_is_support(key):
    shape = (2, 3, 10, 6)
    init = sparseinit.sparse(0.45, in_axis=2, out_axis=3, batch_axis=(0, 1))
    w = init(key, shape)
    check_exact(w, 5, out_axis=3, batch_axis=(0, 1), mask=init.mask(key, shape))


@pytest.mark.parametrize(
    ("sparsity", "rounding", "zeros"),
    [
        (0.25, "ceil", 3),  # 2.5
        (0.25, "round", 3),
        (0.25, "floor", 2),
        (0.24, "ceil", 3),  # 2.4
        (0.24, "round", 2),
        (0.26, "round", 3),  # 2.6
    ],
)
def test_rounding_modes(key, sparsity, rounding, zeros):
    init = sparseinit.sparse(sparsity, rounding=rounding)
    w = init(key, (10, 5))
    check_exact(w, zeros)


def test_sparsify_counts(key):
    init = sparseinit.sparsify(jax.nn.initializers.he_normal(), 0.07, rounding="ceil")
    w = init(key, (100, 4))
    check_exact(w, 7, mask=init.mask(key, (100, 4)))


@pytest.mark.parametrize(
    "make",
    [
        lambda s: sparseinit.sparse(s),
        lambda s: sparseinit.sparsify(jax.nn.initializers.lecun_normal(), s),
        lambda s: sparseinit.torch_sparse(s),
    ],
    ids=["sparse", "sparsify", "torch_sparse"],
)
def test_sparsity_zero_is_dense_and_one_is_all_zero(key, make):
    shape = (7, 5)
    assert np.all(np.asarray(make(0.0)(key, shape)) != 0)
    assert np.all(np.asarray(make(1.0)(key, shape)) == 0)


@pytest.mark.parametrize(("rounding", "zeros"), [("ceil", 1), ("round", 1), ("floor", 0)])
def test_fan_in_one(key, rounding, zeros):
    init = sparseinit.sparse(0.5, rounding=rounding)
    w = init(key, (1, 6))
    check_exact(w, zeros)


@pytest.mark.parametrize("shape", [(0, 5), (5, 0), (3, 3, 0, 4), (0, 0)])
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_zero_size_dimensions(key, shape, dtype):
    init = sparseinit.sparse(0.5)
    w = init(key, shape, dtype)
    assert w.shape == shape
    assert w.dtype == dtype
    assert w.size == 0
    mask = init.mask(key, shape)
    assert mask.shape == shape
    assert mask.dtype == jnp.bool_


@pytest.mark.parametrize(("nonzero", "kept"), [(0, 0), (1, 1), (15, 15), (20, 20), (100, 20)])
def test_martens_keeps_min_of_nonzero_and_fan_in(key, nonzero, kept):
    init = sparseinit.martens(nonzero)
    w = init(key, (20, 6))
    check_exact(w, 20 - kept)


def test_martens_conv_kernel(key):
    init = sparseinit.martens(15)
    w = init(key, (3, 3, 4, 5))  # fan-in 36
    check_exact(w, 36 - 15, mask=init.mask(key, (3, 3, 4, 5)))


@pytest.mark.parametrize(
    ("sparsity", "out"),
    [(0.3, 10), (0.25, 10), (0.07, 100), (0.5, 1), (0.99, 7)],
)
def test_torch_sparse_counts_per_input_row(key, sparsity, out):
    # PyTorch zeros ceil(s * rows) per column of its (out, in) weight: per input. On the Flax
    # kernel (in, out), the transpose, that is per row, over the outputs.
    init = sparseinit.torch_sparse(sparsity)
    shape = (6, out)
    w = np.asarray(init(key, shape))
    zeros = exact_count(sparsity, out, "ceil")
    np.testing.assert_array_equal((w == 0).sum(axis=1), np.full(6, zeros))
    np.testing.assert_array_equal(np.asarray(init.mask(key, shape)), w != 0)


def test_torch_sparse_matches_torch():
    torch = pytest.importorskip("torch")
    # Values where binary and decimal products agree: PyTorch uses the binary ceil.
    for sparsity, rows, cols in [(0.3, 10, 6), (0.5, 7, 3), (0.9, 20, 4), (0.1, 1, 5)]:
        weight = torch.empty(rows, cols)  # PyTorch's (out, in)
        torch.nn.init.sparse_(weight, sparsity)
        torch_zeros = (weight == 0).sum(dim=0).numpy()  # per column: per input
        w = np.asarray(sparseinit.torch_sparse(sparsity)(jax.random.key(0), (cols, rows)))
        np.testing.assert_array_equal((w == 0).sum(axis=1), torch_zeros)


# ---- property tests over random shapes and axes -------------------------------------------


@st.composite
def layouts(draw):
    """A small shape of 2 to 4 dims with disjoint in, out and batch axes."""
    ndim = draw(st.integers(2, 4))
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=ndim, max_size=ndim)))
    axes = draw(st.permutations(range(ndim)))
    num_out = draw(st.integers(1, ndim - 1))
    num_batch = draw(st.integers(0, ndim - 1 - num_out))
    out = tuple(axes[:num_out])
    batch = tuple(axes[num_out : num_out + num_batch])
    rest = axes[num_out + num_batch :]
    # in_axis names one or more of the rest; the others are receptive field, still fan-in.
    ins = tuple(rest[: draw(st.integers(1, len(rest)))])
    if draw(st.booleans()):  # the same axes counted from the end
        out, ins = tuple(a - ndim for a in out), tuple(a - ndim for a in ins)

    def as_arg(axes):
        # A single axis is given as an int or as a one-element tuple, at random.
        return axes[0] if len(axes) == 1 and draw(st.booleans()) else axes

    return shape, as_arg(ins), as_arg(out), as_arg(batch) if batch else ()


def fan_in_of(shape, out_axis, batch_axis):
    neurons = {a % len(shape) for a in np.atleast_1d(out_axis)}
    neurons |= {a % len(shape) for a in np.atleast_1d(np.asarray(batch_axis, dtype=int))}
    return math.prod(d for a, d in enumerate(shape) if a not in neurons)


# Each example is a new shape and count, hence a new compilation: few examples, small shapes.
@settings(max_examples=10)
@given(
    layout=layouts(),
    sparsity=st.sampled_from(GRID),
    rounding=st.sampled_from(ROUNDINGS),
    seed=st.integers(0, 2**31 - 1),
)
def test_property_sparse_exact_per_neuron(layout, sparsity, rounding, seed):
    shape, in_axis, out_axis, batch_axis = layout
    init = sparseinit.sparse(
        sparsity, rounding=rounding, in_axis=in_axis, out_axis=out_axis, batch_axis=batch_axis
    )
    key = jax.random.key(seed)
    w = init(key, shape)
    assert w.shape == shape
    zeros = exact_count(sparsity, fan_in_of(shape, out_axis, batch_axis), rounding)
    check_exact(w, zeros, out_axis, batch_axis)


@settings(max_examples=6)
@given(layout=layouts(), nonzero=st.integers(0, 40), seed=st.integers(0, 2**31 - 1))
def test_property_martens_exact_per_neuron(layout, nonzero, seed):
    shape, in_axis, out_axis, batch_axis = layout
    init = sparseinit.martens(nonzero, in_axis=in_axis, out_axis=out_axis, batch_axis=batch_axis)
    w = init(jax.random.key(seed), shape)
    fan_in = fan_in_of(shape, out_axis, batch_axis)
    counts = zeros_per_neuron(w, out_axis, batch_axis)
    np.testing.assert_array_equal(counts, np.full_like(counts, fan_in - min(nonzero, fan_in)))


# ---- min_kept -------------------------------------------------------------------------------


def capped_count(sparsity, fan_in, rounding, min_kept):
    """``min(R(sparsity * fan_in), fan_in - min(min_kept, fan_in))`` in exact arithmetic."""
    return min(exact_count(sparsity, fan_in, rounding), fan_in - min(min_kept, fan_in))


# The table: fan-ins 1, 4, 10 and 64 at sparsities 0.9 and 0.99, ceil rounding.
MIN_KEPT_TABLE = [
    # (sparsity, fan_in, zeros with min_kept=0, zeros with min_kept=1)
    (0.9, 1, 1, 0),
    (0.9, 4, 4, 3),
    (0.9, 10, 9, 9),
    (0.9, 64, 58, 58),
    (0.99, 1, 1, 0),
    (0.99, 4, 4, 3),
    (0.99, 10, 10, 9),
    (0.99, 64, 64, 63),
]


@pytest.mark.parametrize(("sparsity", "fan_in", "zeros", "zeros_kept"), MIN_KEPT_TABLE)
def test_min_kept_table(key, sparsity, fan_in, zeros, zeros_kept):
    assert sparseinit.num_zeros(sparsity, fan_in, "ceil") == zeros
    assert sparseinit.num_zeros(sparsity, fan_in, "ceil", min_kept=1) == zeros_kept
    assert capped_count(sparsity, fan_in, "ceil", 1) == zeros_kept
    traced = jax.jit(lambda s: num_zeros_traced(s, fan_in, "ceil", 1))(jnp.float32(sparsity))
    assert int(traced) == zeros_kept


@pytest.mark.parametrize("rounding", ROUNDINGS)
@pytest.mark.parametrize("min_kept", [0, 1, 3, 40])
def test_num_zeros_min_kept_on_the_grid(rounding, min_kept):
    fan_ins = (1, 2, 3, 4, 5, 7, 10, 32, 64, 100)
    got = [[sparseinit.num_zeros(s, n, rounding, min_kept=min_kept) for s in GRID] for n in fan_ins]
    want = [[capped_count(s, n, rounding, min_kept) for s in GRID] for n in fan_ins]
    assert got == want


def test_min_kept_small_fan_in_whole_kernel(key):
    # The example: a (4, 64) kernel at 0.9 loses every input without min_kept.
    w = sparseinit.sparse(0.9)(key, (4, 64))
    check_exact(w, 4)
    init = sparseinit.sparse(0.9, min_kept=1)
    check_exact(init(key, (4, 64)), 3, mask=init.mask(key, (4, 64)))
    # More than the fan-in keeps every weight: a dense layer, never an error.
    check_exact(sparseinit.sparse(0.99, min_kept=10)(key, (4, 64)), 0)


def test_min_kept_traced_equals_concrete_with_rescale(key):
    # One program for the whole sweep; each value gives what its concrete initializer gives.
    shape = (10, 6)
    sparsities = (0.0, 0.5, 0.9, 0.95, 1.0)
    sweep = jax.jit(jax.vmap(lambda s: sparseinit.sparse(s, min_kept=2, rescale=True)(key, shape)))(
        jnp.asarray(sparsities, jnp.float32)
    )
    for i, s in enumerate(sparsities):
        concrete = sparseinit.sparse(s, min_kept=2, rescale=True)(key, shape)
        np.testing.assert_array_equal(np.asarray(sweep[i]), np.asarray(concrete))
        check_exact(concrete, capped_count(s, 10, "ceil", 2))


def test_min_kept_rescale_uses_the_kept_count(key):
    # 0.99 of 16 would zero all 16; min_kept=4 keeps 4, so the factor is sqrt(16 / 4) = 2.
    shape = (16, 8)
    plain = sparseinit.sparse(0.99, min_kept=4)(key, shape)
    rescaled = sparseinit.sparse(0.99, min_kept=4, rescale=True)(key, shape)
    check_exact(plain, 12)
    np.testing.assert_allclose(np.asarray(rescaled), 2.0 * np.asarray(plain), rtol=1e-6)
    # Without min_kept no weight is kept, and the neurons stay zero (no division by zero).
    assert not np.any(np.asarray(sparseinit.sparse(0.99, rescale=True)(key, shape)))


def test_min_kept_sparsify_counts(key):
    init = sparseinit.sparsify(jax.nn.initializers.he_normal(), 1.0, min_kept=3)
    w = init(key, (3, 3, 2, 5))  # fan-in 18: 15 zeros
    check_exact(w, 15, mask=init.mask(key, (3, 3, 2, 5)))


# Each example is a new shape and count, hence a new compilation: few examples, small shapes.
@settings(max_examples=12)
@given(
    layout=layouts(),
    sparsity=st.sampled_from(GRID),
    rounding=st.sampled_from(ROUNDINGS),
    min_kept=st.integers(0, 6),
    traced=st.booleans(),
    seed=st.integers(0, 2**31 - 1),
)
def test_property_min_kept_exact_per_neuron(layout, sparsity, rounding, min_kept, traced, seed):
    shape, in_axis, out_axis, batch_axis = layout
    axes = {"in_axis": in_axis, "out_axis": out_axis, "batch_axis": batch_axis}
    key = jax.random.key(seed)

    def weights(s):
        return sparseinit.sparse(s, rounding=rounding, min_kept=min_kept, **axes)(key, shape)

    w = jax.jit(weights)(jnp.float32(sparsity)) if traced else weights(sparsity)
    assert w.shape == shape
    zeros = capped_count(sparsity, fan_in_of(shape, out_axis, batch_axis), rounding, min_kept)
    check_exact(w, zeros, out_axis, batch_axis)
