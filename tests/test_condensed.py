"""Condensed kernels: the initializers' own weights kept bit for bit, condense, and x @ c."""

import functools
import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sparseinit
from sparseinit._condensed import _gather_is_faster, compact
from sparseinit._layout import Layout
from tests.conftest import X64

KEY = jax.random.key(0)
DTYPES = [jnp.float32, jnp.bfloat16, jnp.float16] + ([jnp.float64] if X64 else [])

# name: (initializer of a sparsity, shape, neuron axes): Dense, conv, stacked kernels, rows as
# neurons, a base initializer's values, and torch_sparse (its neurons are the input rows).
CASES = {
    "sparse-dense": (lambda s: sparseinit.sparse(s), (40, 12), (1,)),
    "sparse-conv": (lambda s: sparseinit.sparse(s, distribution="normal"), (3, 3, 8, 16), (3,)),
    "sparse-batch": (lambda s: sparseinit.sparse(s, batch_axis=0), (3, 20, 6), (0, 2)),
    "sparse-rows": (lambda s: sparseinit.sparse(s, in_axis=-1, out_axis=0), (7, 30), (0,)),
    "sparsify": (
        lambda s: sparseinit.sparsify(jax.nn.initializers.lecun_normal(), s),
        (40, 12),
        (1,),
    ),
    "torch_sparse": (lambda s: sparseinit.torch_sparse(s), (20, 12), (0,)),
}


def _bits(x):
    x = np.asarray(x)
    return x.view(f"uint{8 * x.dtype.itemsize}")


def _assert_condensed_of(c, weights, mask, neuron_axes):
    """``c`` holds ``weights`` at ``mask``: the layout, counts, order and bits all agree."""
    weights, mask = np.asarray(weights), np.asarray(mask)
    layout = Layout.of(weights.shape, neuron_axes, ())
    kept = int(mask.sum()) // max(layout.num_neurons, 1)
    neuron_dims = tuple(weights.shape[a] for a in layout.neuron_axes)
    assert isinstance(c, sparseinit.Condensed)
    assert (c.shape, c.neuron_axes, c.k, c.num_kept) == (weights.shape, neuron_axes, kept, kept)
    chex.assert_shape([c.values, c.indices], (kept, *neuron_dims))
    assert c.indices.dtype == jnp.int32
    assert c.dtype == weights.dtype
    assert np.all(np.diff(np.asarray(c.indices), axis=0) > 0)
    dense = c.todense()
    assert (dense.shape, dense.dtype) == (weights.shape, weights.dtype)
    np.testing.assert_array_equal(_bits(dense), _bits(np.where(mask, weights, 0)))


# Every sparsity on the two orientations and a conv kernel; the other layouts at 0.9.
@pytest.mark.parametrize(
    ("case", "sparsity"),
    [
        *(
            (case, s)
            for case in ("sparse-dense", "sparse-conv", "torch_sparse")
            for s in (0.0, 0.5, 0.9, 1.0)
        ),
        *((case, 0.9) for case in ("sparse-batch", "sparse-rows", "sparsify")),
    ],
)
def test_todense_is_the_initializers_weights_bit_for_bit(case, sparsity):
    factory, shape, neuron_axes = CASES[case]
    init = factory(sparsity)
    c = init.condensed(KEY, shape)
    weights, mask = init(KEY, shape), init.mask(KEY, shape)
    np.testing.assert_array_equal(_bits(c.todense()), _bits(weights))
    _assert_condensed_of(c, weights, mask, neuron_axes)
    fan_in = math.prod(shape) // math.prod(shape[a] for a in neuron_axes)
    assert c.k == fan_in - sparseinit.num_zeros(sparsity, fan_in)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: jnp.dtype(d).name)
@pytest.mark.parametrize(
    "init",
    [
        sparseinit.sparse(0.7, batch_axis=0),
        sparseinit.sparsify(jax.nn.initializers.glorot_uniform(), 0.5),
        sparseinit.martens(5),
        sparseinit.torch_sparse(0.25),
    ],
    ids=["sparse", "sparsify", "martens", "torch_sparse"],
)
def test_every_dtype_bit_for_bit(init, dtype):
    shape = (2, 30, 8) if isinstance(init, sparseinit.SparseInit) else (30, 8)
    c = init.condensed(KEY, shape, dtype)
    weights = init(KEY, shape, dtype)
    assert c.dtype == weights.dtype == jnp.dtype(dtype)
    np.testing.assert_array_equal(_bits(c.todense()), _bits(weights))
    np.testing.assert_array_equal(np.asarray(c.todense()) != 0, init.mask(KEY, shape))


@pytest.mark.parametrize("nonzero", [0, 3, 100])
def test_martens_keeps_min_of_nonzero_and_fan_in(nonzero):
    init = sparseinit.martens(nonzero)
    c = init.condensed(KEY, (3, 3, 4, 5))
    assert c.k == min(nonzero, 36)
    chex.assert_shape(c.values, (min(nonzero, 36), 5))
    np.testing.assert_array_equal(_bits(c.todense()), _bits(init(KEY, (3, 3, 4, 5))))


@pytest.mark.parametrize("shape", [(0, 5), (5, 0), (3, 3, 0, 4), (0, 0)])
def test_zero_size_shapes_give_an_empty_condensed(shape):
    c = sparseinit.sparse(0.5).condensed(KEY, shape)
    assert c.shape == shape
    assert c.values.size == 0
    assert c.indices.size == 0
    chex.assert_shape(c.values, (c.k, shape[-1]))
    dense = c.todense()
    assert dense.shape == shape
    assert dense.dtype == sparseinit.sparse(0.5)(KEY, shape).dtype


def test_a_traced_sparsity_raises():
    with pytest.raises(ValueError, match=r"^sparse\.condensed: sparsity must be concrete"):
        jax.jit(lambda s: sparseinit.sparse(s).condensed(KEY, (10, 4)).values)(0.5)


def test_the_support_is_the_samplers_not_the_non_zeros():
    # A kept weight that is exactly zero (after training, say) stays kept.
    init = sparseinit.sparse(0.5)
    mask = init.mask(KEY, (10, 4))
    weights = init(KEY, (10, 4)).at[jnp.argmax(mask[:, 0]), 0].set(0.0)
    c = sparseinit.condense(weights, mask)
    np.testing.assert_array_equal(c.indices, init.condensed(KEY, (10, 4)).indices)
    assert c.k == 5
    assert int((c.values == 0).sum()) == 1


# ---- condense ---------------------------------------------------------------------------


def test_condense_roundtrip_of_a_trained_kernel():
    init = sparseinit.sparse(0.75, batch_axis=0)
    mask = init.mask(KEY, (2, 3, 3, 8, 5))
    kernel = jax.random.normal(jax.random.key(1), mask.shape)  # dense everywhere
    c = sparseinit.condense(kernel, mask, batch_axis=0)
    assert c.neuron_axes == (0, 4)
    assert c.k == 18
    _assert_condensed_of(c, kernel, mask, (0, 4))


def test_condense_of_a_numpy_kernel_and_mask():
    mask = np.array([[True, False], [False, True], [True, True]])
    c = sparseinit.condense(np.arange(6.0).reshape(3, 2), mask)
    assert c.values.tolist() == [[0.0, 3.0], [4.0, 5.0]]
    assert c.indices.tolist() == [[0, 1], [2, 2]]


def test_condense_names_the_neuron_whose_count_differs():
    mask = np.ones((6, 4), bool)
    mask[:3, 0] = False
    mask[0, 2] = False
    with pytest.raises(ValueError, match=r"neuron 0 keeps 3 and neuron 1 \(index \(1,\) along"):
        sparseinit.condense(jnp.ones((6, 4)), mask)
    stacked = np.ones((2, 5, 3), bool)
    stacked[1, 0, 2] = False
    with pytest.raises(
        ValueError, match=r"neuron 5 \(index \(1, 2\) along axes \(0, 2\)\) keeps 4"
    ):
        sparseinit.condense(jnp.ones((2, 5, 3)), stacked, batch_axis=0)


@pytest.mark.parametrize(
    ("kernel", "mask", "kwargs", "pattern"),
    [
        (
            jnp.ones((4, 3)),
            jnp.ones((4, 3), jnp.float32),
            {},
            r"mask must be a boolean array, got dtype float32",
        ),
        (jnp.ones((4, 3)), jnp.ones((3, 4), bool), {}, r"mask must have the kernel's shape"),
        (jnp.ones(4), jnp.ones(4, bool), {}, r"shape must have at least 2 dimensions"),
        (jnp.ones((4, 3)), jnp.ones((4, 3), bool), {"out_axis": 0, "in_axis": 0}, r"must differ"),
        (jnp.ones((4, 3)), jnp.ones((4, 3), bool), {"out_axis": 2}, r"out_axis=2 is out of range"),
    ],
)
def test_condense_rejects_bad_input(kernel, mask, kwargs, pattern):
    with pytest.raises(ValueError, match=rf"^condense: .*{pattern}"):
        sparseinit.condense(kernel, mask, **kwargs)


def test_condense_needs_a_concrete_mask():
    with pytest.raises(ValueError, match=r"^condense: mask must be a concrete array"):
        jax.jit(lambda m: sparseinit.condense(jnp.ones((4, 3)), m).values)(jnp.ones((4, 3), bool))
    # A concrete mask and a traced kernel are fine.
    mask = sparseinit.sparse(0.5).mask(KEY, (4, 3))
    values = jax.jit(lambda w: sparseinit.condense(w, mask).values)(jnp.ones((4, 3)))
    chex.assert_shape(values, (2, 3))


@settings(max_examples=20)
@given(
    data=st.data(),
    shape=st.lists(st.integers(1, 5), min_size=2, max_size=4).map(tuple),
)
def test_condense_any_axes_and_counts(data, shape):
    ndim = len(shape)
    out_axis = data.draw(st.integers(0, ndim - 1))
    rest = [a for a in range(ndim) if a != out_axis]
    batch = tuple(data.draw(st.lists(st.sampled_from(rest), unique=True, max_size=len(rest) - 1)))
    in_axis = next(a for a in rest if a not in batch)
    layout = Layout.of(shape, (out_axis,), batch)
    kept = data.draw(st.integers(0, layout.fan_in))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    view = np.zeros(layout.view_shape, bool)
    for n in range(layout.num_neurons):
        chosen = rng.permutation(layout.fan_in)[:kept]
        if layout.neurons_last:
            view[chosen, n] = True
        else:
            view[n, chosen] = True
    mask = np.asarray(layout.from_view(jnp.asarray(view)))
    kernel = rng.standard_normal(shape).astype(np.float32)
    c = sparseinit.condense(kernel, mask, in_axis=in_axis, out_axis=out_axis, batch_axis=batch)
    _assert_condensed_of(c, kernel, mask, layout.neuron_axes)
    np.testing.assert_array_equal(c.to_bcoo().todense(), np.where(mask, kernel, 0))


def test_compact_is_jit_friendly_and_takes_the_support_as_given():
    layout = Layout.of((6, 3), (1,), ())
    support = jnp.asarray(np.tile([[True], [False]], (3, 3)))
    c = jax.jit(compact, static_argnums=(2, 3))(jnp.zeros((6, 3)), support, layout, 3)
    np.testing.assert_array_equal(c.indices, [[0, 0, 0], [2, 2, 2], [4, 4, 4]])
    assert bool((c.values == 0).all())


# ---- the pytree ---------------------------------------------------------------------------


def test_pytree_children_are_values_and_indices():
    c = sparseinit.sparse(0.5).condensed(KEY, (8, 4))
    leaves, treedef = jax.tree.flatten(c)
    assert [leaf.shape for leaf in leaves] == [(4, 4), (4, 4)]
    assert leaves[1].dtype == jnp.int32
    rebuilt = jax.tree.unflatten(treedef, leaves)
    assert (rebuilt.shape, rebuilt.neuron_axes) == ((8, 4), (1,))
    assert (
        jax.tree.structure(sparseinit.sparse(0.5).condensed(jax.random.key(1), (8, 4))) == treedef
    )
    doubled = jax.jit(lambda c: jax.tree.map(lambda v: v * 2, c))(c)
    np.testing.assert_array_equal(doubled.values, c.values * 2)
    assert repr(c) == f"Condensed(shape=(8, 4), k=4, dtype={c.dtype}, neuron_axes=(1,))"
    rebuilt = sparseinit.Condensed(c.values, c.indices, (8, 4), (1,))
    np.testing.assert_array_equal(jax.jit(lambda c: c.todense())(rebuilt), c.todense())


def test_to_bcoo_for_every_layout():
    for case in ("sparse-dense", "sparse-conv", "sparse-batch", "torch_sparse"):
        factory, shape, _ = CASES[case]
        c = factory(0.5).condensed(KEY, shape)
        m = c.to_bcoo()
        assert m.shape == shape
        assert m.nse == c.values.size
        np.testing.assert_array_equal(m.todense(), c.todense())


# ---- x @ c --------------------------------------------------------------------------------


@functools.cache
def _kernel():
    """A Dense (200, 48) kernel at 0.9: 20 of 200 inputs kept per output."""
    return sparseinit.sparse(0.9).condensed(KEY, (200, 48))


class MatmulTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_matches_the_dense_kernel(self):
        matmul = self.variant(lambda x, c: x @ c)
        dense = _kernel().todense()
        # () and (5,) and (2, 3) batches take the gather; 400 rows the dense kernel.
        for batch in [(), (5,), (2, 3), (400,)]:
            x = jax.random.normal(jax.random.key(2), (*batch, 200))
            y = matmul(x, _kernel())
            chex.assert_shape(y, (*batch, 48))
            np.testing.assert_allclose(y, x @ dense, rtol=1e-5, atol=1e-5)

    @chex.variants(with_jit=True, without_jit=True)
    def test_c_at_y_matches_the_dense_kernel(self):
        matmul = self.variant(lambda c, y: c @ y)
        dense = _kernel().todense()
        for shape in [(48,), (48, 3)]:
            y = jax.random.normal(jax.random.key(3), shape)
            np.testing.assert_allclose(matmul(_kernel(), y), dense @ y, rtol=1e-5, atol=1e-5)


def test_numpy_input_and_dtype_promotion():
    x = np.ones((3, 200), np.float32)
    np.testing.assert_allclose(x @ _kernel(), x @ np.asarray(_kernel().todense()), rtol=1e-5)
    half = sparseinit.sparse(0.9).condensed(KEY, (200, 48), jnp.bfloat16)
    assert (jnp.ones((3, 200), jnp.float32) @ half).dtype == jnp.float32
    assert (jnp.ones((3, 200), jnp.bfloat16) @ half).dtype == jnp.bfloat16
    assert (jnp.ones((3, 200), int) @ half).dtype == (
        jnp.ones((3, 200), int) @ half.todense()
    ).dtype


def test_vmap_over_inputs_and_over_stacked_kernels():
    xs = jax.random.normal(jax.random.key(4), (3, 7, 200))
    ys = jax.vmap(lambda x: x @ _kernel())(xs)
    np.testing.assert_allclose(ys, xs @ _kernel().todense(), rtol=1e-5, atol=1e-5)
    keys = jax.random.split(KEY, 3)
    members = [sparseinit.sparse(0.9).condensed(k, (200, 48)) for k in keys]
    stacked = jax.tree.map(lambda *leaves: jnp.stack(leaves), *members)
    ys = jax.vmap(lambda c, x: x @ c)(stacked, xs)
    for i, c in enumerate(members):
        np.testing.assert_allclose(ys[i], xs[i] @ c.todense(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("rows", [4, 400])  # the gather, then the dense kernel
def test_grad_over_a_condensed_is_the_dense_grad_at_the_support(rows):
    x = jax.random.normal(jax.random.key(5), (rows, 200))

    def loss(kernel):
        return jnp.sum(jnp.tanh(x @ kernel) ** 2)

    grad = jax.grad(loss, allow_int=True)(_kernel())
    assert isinstance(grad, sparseinit.Condensed)
    assert grad.values.shape == _kernel().values.shape
    assert grad.indices.dtype == jax.dtypes.float0
    dense_grad = jax.grad(loss)(_kernel().todense())
    expected = jnp.take_along_axis(dense_grad, _kernel().indices, axis=0)
    np.testing.assert_allclose(grad.values, expected, rtol=1e-4, atol=1e-5)
    grad_x = jax.grad(lambda x: jnp.sum(jnp.tanh(x @ _kernel()) ** 2))(x)
    dense_x = jax.grad(lambda x: jnp.sum(jnp.tanh(x @ _kernel().todense()) ** 2))(x)
    np.testing.assert_allclose(grad_x, dense_x, rtol=1e-4, atol=1e-5)


def test_nothing_kept_gives_zeros():
    c = sparseinit.sparse(1.0).condensed(KEY, (20, 6))
    assert c.k == 0
    np.testing.assert_array_equal(jnp.ones((2, 20)) @ c, jnp.zeros((2, 6)))


@pytest.mark.parametrize("case", ["sparse-conv", "sparse-batch", "torch_sparse", "sparse-rows"])
def test_matmul_needs_a_dense_layout(case):
    factory, shape, _ = CASES[case]
    c = factory(0.5).condensed(KEY, shape)
    with pytest.raises(ValueError, match=r"^Condensed: x @ c needs a Dense kernel \(in, out\)"):
        jnp.ones(shape[-2]) @ c
    with pytest.raises(ValueError, match=r"^Condensed: c @ y needs a Dense kernel"):
        c @ jnp.ones(shape[-1])


def test_matmul_checks_the_input_axis():
    with pytest.raises(ValueError, match=r"x of shape \(\.\.\., 200\) .* got \(3, 100\)"):
        jnp.ones((3, 100)) @ _kernel()
    with pytest.raises(ValueError, match=r"y of shape \(48, \.\.\.\) .* got \(3,\)"):
        _kernel() @ jnp.ones(3)


@pytest.mark.parametrize(
    ("rows", "k", "fan_in", "gathers"),
    [
        (16, 102, 1024, True),  # 1024x1024 at 0.9: the gather up to batch 16 ...
        (32, 102, 1024, False),  # ... the dense kernel from 32
        (256, 11, 1024, True),  # at 0.99 the gather at every batch measured
        (32, 40, 4096, True),  # 4096x4096 at 0.99
        (4096, 11, 1024, False),  # past 2**24 gathered elements
    ],
)
def test_the_matmul_route_follows_the_measured_costs(rows, k, fan_in, gathers):
    assert _gather_is_faster(rows, k, fan_in, fan_in) is gathers
