"""Flax nnx and linen layers built with sparseinit initializers: the counts land per neuron."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import linen as nn
from flax import nnx
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

import sparseinit
import sparseinit.flax
from tests.conftest import zeros_per_neuron


def _linen_kernel(module, x):
    return module.init(jax.random.key(0), x)["params"]["kernel"]


def test_nnx_linear_and_linen_dense():
    init = sparseinit.sparse(0.9)
    layer = nnx.Linear(100, 16, kernel_init=init, rngs=nnx.Rngs(0))
    assert set(zeros_per_neuron(layer.kernel[...]).tolist()) == {90}
    kernel = _linen_kernel(nn.Dense(16, kernel_init=init), jnp.ones((1, 100)))
    assert set(zeros_per_neuron(kernel).tolist()) == {90}


def test_linear_general_fan_in_is_the_flattened_inputs():
    # Flax calls the initializer on the flattened (prod(batch + in axes), prod(features))
    # kernel and reshapes: a neuron is one of the 6 flattened outputs and its fan-in is all
    # 4*5 inputs, whatever the axes.
    init = sparseinit.sparse(0.5)
    layer = nnx.LinearGeneral((4, 5), (2, 3), axis=(-2, -1), kernel_init=init, rngs=nnx.Rngs(0))
    kernel = np.asarray(layer.kernel[...])
    assert kernel.shape == (4, 5, 2, 3)
    assert set((kernel.reshape(20, 6) == 0).sum(axis=0).tolist()) == {10}
    linen = _linen_kernel(
        nn.DenseGeneral((2, 3), axis=(-2, -1), kernel_init=init), jnp.ones((1, 4, 5))
    )
    assert set((np.asarray(linen).reshape(20, 6) == 0).sum(axis=0).tolist()) == {10}


@pytest.mark.parametrize("groups", [1, 4])
def test_conv_including_grouped(groups):
    init = sparseinit.sparse(0.7)
    layer = nnx.Conv(8, 16, (3, 3), feature_group_count=groups, kernel_init=init, rngs=nnx.Rngs(0))
    kernel = layer.kernel[...]
    fan_in = 3 * 3 * 8 // groups  # the kernel holds in // groups inputs per output
    assert kernel.shape == (3, 3, 8 // groups, 16)
    assert set(zeros_per_neuron(kernel).tolist()) == {math.ceil(0.7 * fan_in)}
    linen = _linen_kernel(
        nn.Conv(16, (3, 3), feature_group_count=groups, kernel_init=init), jnp.ones((1, 6, 6, 8))
    )
    assert set(zeros_per_neuron(linen).tolist()) == {math.ceil(0.7 * fan_in)}


def test_flax_nnx_linear():
    layer = nnx.Linear(784, 256, kernel_init=sparseinit.sparse(0.9), rngs=nnx.Rngs(0))
    kernel = np.asarray(layer.kernel[...])
    assert kernel.shape == (784, 256)
    np.testing.assert_array_equal((kernel == 0).sum(axis=0), np.full(256, 706))


def test_flax_linen_dense():
    model = nn.Dense(256, kernel_init=sparseinit.sparse(0.9))
    params = model.init(jax.random.key(0), jnp.ones((1, 784)))
    kernel = np.asarray(params["params"]["kernel"])
    assert kernel.shape == (784, 256)
    np.testing.assert_array_equal((kernel == 0).sum(axis=0), np.full(256, 706))


def test_flax_nnx_conv():
    layer = nnx.Conv(
        16, 32, kernel_size=(3, 3), kernel_init=sparseinit.sparse(0.5), rngs=nnx.Rngs(0)
    )
    kernel = np.asarray(layer.kernel[...])
    assert kernel.shape == (3, 3, 16, 32)
    zeros = math.ceil(0.5 * 3 * 3 * 16)
    np.testing.assert_array_equal(zeros_per_neuron(kernel), np.full(32, zeros))


@pytest.mark.parametrize("transpose_kernel", [False, True])
def test_conv_transpose(transpose_kernel):
    init = sparseinit.flax.conv_transpose(0.5, transpose_kernel=transpose_kernel)
    layer = nnx.ConvTranspose(
        4, 8, (3, 3), transpose_kernel=transpose_kernel, kernel_init=init, rngs=nnx.Rngs(0)
    )
    kernel = layer.kernel[...]
    out_axis = -2 if transpose_kernel else -1
    assert kernel.shape[out_axis] == 8
    assert set(zeros_per_neuron(kernel, out_axis=out_axis).tolist()) == {18}  # 0.5 * 3*3*4
    y = layer(jnp.ones((1, 5, 5, 4)))
    assert y.shape == (1, 5, 5, 8)  # "SAME" padding, stride 1


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"in_axis": 0}, r"in_axis=0 conflicts with transpose_kernel=True"),
        ({"out_axis": -1}, r"out_axis=-1 conflicts with transpose_kernel=True"),
        ({"in_axis": (0, 1)}, r"in_axis=\(0, 1\) conflicts with transpose_kernel=True"),
    ],
)
def test_conv_transpose_rejects_axes_that_conflict_with_transpose_kernel(kwargs, pattern):
    with pytest.raises(ValueError, match=rf"^conv_transpose: {pattern}"):
        sparseinit.flax.conv_transpose(0.5, transpose_kernel=True, **kwargs)


def test_conv_transpose_takes_the_axes_it_would_set_and_any_without_transpose_kernel():
    same = sparseinit.flax.conv_transpose(0.5, transpose_kernel=True, in_axis=-1, out_axis=-2)
    assert same == sparseinit.flax.conv_transpose(0.5, transpose_kernel=True)
    assert (same.in_axis, same.out_axis) == (-1, -2)
    plain = sparseinit.flax.conv_transpose(0.5, in_axis=0, out_axis=-1)
    assert (plain.in_axis, plain.out_axis) == (0, -1)
    assert sparseinit.flax.conv_transpose(0.5) == sparseinit.sparse(0.5)


def test_helpers_pass_every_parameter_to_sparse():
    init = sparseinit.flax.embed(
        0.5,
        distribution="normal",
        scale=2.0,
        rounding="floor",
        rescale=True,
        min_kept=1,
        batch_axis=(0,),
        dtype=jnp.bfloat16,
    )
    expected = sparseinit.sparse(
        0.5,
        distribution="normal",
        scale=2.0,
        rounding="floor",
        rescale=True,
        min_kept=1,
        in_axis=-1,
        out_axis=-2,
        batch_axis=(0,),
        dtype=jnp.bfloat16,
    )
    assert init == expected
    transposed = sparseinit.flax.conv_transpose(
        0.5, transpose_kernel=True, distribution="normal", min_kept=2, dtype=jnp.float16
    )
    assert transposed == sparseinit.sparse(
        0.5, distribution="normal", min_kept=2, in_axis=-1, out_axis=-2, dtype=jnp.float16
    )


@pytest.mark.parametrize("axis", ["in_axis", "out_axis"])
def test_embed_fixes_its_axes(axis):
    # The embedding's axes are fixed: setting one is a mistake, even to the same value.
    with pytest.raises(ValueError, match=rf"^embed: {axis}=0 cannot be set: an embedding table"):
        sparseinit.flax.embed(0.5, **{axis: 0})
    with pytest.raises(TypeError):
        sparseinit.flax.embed(0.5, sparsity_typo=0.1)  # sparse's own check of its options


def test_embed_rows_are_neurons():
    init = sparseinit.flax.embed(0.75)
    table = nnx.Embed(1000, 64, embedding_init=init, rngs=nnx.Rngs(0)).embedding[...]
    assert set((np.asarray(table) == 0).sum(axis=1).tolist()) == {48}
    linen = nn.Embed(1000, 64, embedding_init=init).init(jax.random.key(0), jnp.zeros((1,), int))
    assert set((np.asarray(linen["params"]["embedding"]) == 0).sum(axis=1).tolist()) == {48}
    # The default axes would count per feature column over the 1000 rows instead.
    plain = sparseinit.sparse(0.75)(jax.random.key(0), (1000, 64))
    assert set((np.asarray(plain) == 0).sum(axis=0).tolist()) == {750}


def test_with_partitioning():
    mesh = jax.make_mesh((1,), ("model",))
    init = nnx.with_partitioning(sparseinit.sparse(0.9), (None, "model"))
    with jax.set_mesh(mesh):
        layer = nnx.Linear(100, 16, kernel_init=init, rngs=nnx.Rngs(0))
    kernel = layer.kernel
    assert kernel.get_metadata()["out_sharding"] == (None, "model")
    assert kernel[...].sharding.is_equivalent_to(NamedSharding(mesh, P(None, "model")), 2)
    assert set(zeros_per_neuron(kernel[...]).tolist()) == {90}


def test_eval_shape_computes_nothing():
    init = sparseinit.sparse(0.9)
    abstract = nnx.eval_shape(
        lambda: nnx.Linear(100, 16, kernel_init=init, param_dtype=jnp.bfloat16, rngs=nnx.Rngs(0))
    )
    kernel = abstract.kernel.get_value()
    assert isinstance(kernel, jax.ShapeDtypeStruct)
    assert (kernel.shape, kernel.dtype) == ((100, 16), jnp.bfloat16)
    out = jax.eval_shape(lambda k: init(k, (3, 3, 8, 16), jnp.float16), jax.random.key(0))
    assert (out.shape, out.dtype) == ((3, 3, 8, 16), jnp.float16)
    shapes = jax.eval_shape(
        nn.Dense(16, kernel_init=init).init, jax.random.key(0), jnp.ones((1, 100))
    )
    assert shapes["params"]["kernel"].shape == (100, 16)


def test_param_dtype_bfloat16():
    init = sparseinit.sparse(0.9)
    layer = nnx.Linear(100, 16, kernel_init=init, param_dtype=jnp.bfloat16, rngs=nnx.Rngs(0))
    kernel = layer.kernel[...]
    assert kernel.dtype == jnp.bfloat16
    assert set(zeros_per_neuron(kernel).tolist()) == {90}
    # The same support as float32: the mask does not depend on the dtype.
    f32 = nnx.Linear(100, 16, kernel_init=init, rngs=nnx.Rngs(0)).kernel[...]
    np.testing.assert_array_equal(np.asarray(kernel) != 0, np.asarray(f32) != 0)


def test_vmapped_ensemble_of_models_has_independent_masks():
    init = sparseinit.sparse(0.9)

    @nnx.split_rngs(splits=4)
    @nnx.vmap(in_axes=(0,), out_axes=0)
    def make(rngs):
        return nnx.Linear(100, 16, kernel_init=init, rngs=rngs)

    ensemble = make(nnx.Rngs(0))
    kernels = np.asarray(ensemble.kernel[...])
    assert kernels.shape == (4, 100, 16)
    assert set(zeros_per_neuron(kernels, batch_axis=0).reshape(-1).tolist()) == {90}
    masks = kernels != 0
    for i in range(4):
        for j in range(i + 1, 4):
            # Independent masks of 10 kept weights in 100 overlap in about 1 place per
            # neuron, 16 in all; identical masks would overlap in 160.
            assert (masks[i] & masks[j]).sum() < 60


def test_kernel_with_batch_axis_has_independent_masks():
    init = sparseinit.sparse(0.9, batch_axis=0)
    kernels = np.asarray(init(jax.random.key(0), (4, 100, 16)))
    assert set(zeros_per_neuron(kernels, batch_axis=0).reshape(-1).tolist()) == {90}
    masks = kernels != 0
    assert all((masks[0] & masks[i]).sum() < 60 for i in range(1, 4))
    # vmap over keys gives each member what a single call with its key gives.
    keys = jax.random.split(jax.random.key(1), 4)
    stacked = jax.vmap(lambda k: sparseinit.sparse(0.9)(k, (100, 16)))(keys)
    np.testing.assert_array_equal(stacked[2], sparseinit.sparse(0.9)(keys[2], (100, 16)))


def test_report_of_an_nnx_model():
    model = nnx.Sequential(
        nnx.Linear(100, 16, kernel_init=sparseinit.sparse(0.9), rngs=nnx.Rngs(0)),
        nnx.Linear(16, 4, kernel_init=sparseinit.sparse(0.5), rngs=nnx.Rngs(1)),
    )
    report = sparseinit.flax.report(model)
    assert report["layers/0/kernel"].zeros_min == report["layers/0/kernel"].zeros_max == 90
    assert report["layers/1/kernel"].zeros_min == 8
    assert report.nonzero == 16 * 10 + 4 * 8


# ---- CondensedLinear ----------------------------------------------------------------------


def test_condensed_linear_is_nnx_linear_with_the_same_rngs():
    init = sparseinit.sparse(0.9)
    layer = sparseinit.flax.CondensedLinear(200, 48, kernel_init=init, rngs=nnx.Rngs(0))
    dense = nnx.Linear(
        200, 48, kernel_init=init, bias_init=nnx.initializers.normal(), rngs=nnx.Rngs(0)
    )
    kernel = layer.condensed()
    assert isinstance(kernel, sparseinit.Condensed)
    assert (layer.values.shape, layer.indices.shape, layer.bias.shape) == ((20, 48),) * 2 + ((48,),)
    np.testing.assert_array_equal(kernel.todense(), dense.kernel[...])
    # The layer's output is nnx.Linear's with the same kernel and bias.
    dense.bias[...] = jax.random.normal(jax.random.key(1), (48,), jnp.float32)
    layer.bias[...] = dense.bias[...]
    for rows in (3, 400):  # the gather, then the dense kernel
        x = jax.random.normal(jax.random.key(2), (rows, 200))
        np.testing.assert_allclose(layer(x), dense(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("param_dtype", "dtype", "x_dtype"),
    [
        (jnp.bfloat16, None, jnp.float32),
        (jnp.float32, None, jnp.bfloat16),
        (jnp.float32, jnp.float16, jnp.float32),
    ],
)
def test_condensed_linear_promotes_dtypes_like_nnx_linear(param_dtype, dtype, x_dtype):
    kwargs = {"param_dtype": param_dtype, "dtype": dtype, "kernel_init": sparseinit.sparse(0.5)}
    layer = sparseinit.flax.CondensedLinear(16, 4, **kwargs, rngs=nnx.Rngs(0))
    dense = nnx.Linear(16, 4, **kwargs, rngs=nnx.Rngs(0))
    assert layer.values.dtype == jnp.dtype(param_dtype)
    x = jnp.ones((2, 16), x_dtype)
    assert layer(x).dtype == dense(x).dtype
    np.testing.assert_allclose(
        np.asarray(layer(x), np.float32), np.asarray(dense(x), np.float32), rtol=1e-2
    )


def test_condensed_linear_without_bias_and_with_martens_and_sparsify():
    layer = sparseinit.flax.CondensedLinear(
        30, 5, kernel_init=sparseinit.martens(4), use_bias=False, rngs=nnx.Rngs(0)
    )
    assert layer.bias is None
    assert layer.values.shape == (4, 5)
    x = jnp.ones((2, 30))
    np.testing.assert_allclose(layer(x), x @ layer.condensed().todense(), rtol=1e-6)
    wrapped = sparseinit.sparsify(nnx.initializers.lecun_normal(), 0.8)
    assert sparseinit.flax.CondensedLinear(
        30, 5, kernel_init=wrapped, rngs=nnx.Rngs(0)
    ).values.shape == (6, 5)


def test_condensed_linear_trains_the_kept_weights_only():
    model = sparseinit.flax.CondensedLinear(
        64, 8, kernel_init=sparseinit.sparse(0.75), rngs=nnx.Rngs(0)
    )
    indices = np.asarray(model.indices[...])
    initial = np.asarray(model.values[...])
    optimizer = nnx.Optimizer(model, optax.adam(1e-2), wrt=nnx.Param)
    # The optimizer's state is condensed: (k, out) for the kept weights, (out,) for the bias.
    shapes = {leaf.shape for leaf in jax.tree.leaves(nnx.state(optimizer, nnx.optimizer.OptState))}
    assert shapes == {(), (16, 8), (8,)}
    assert set(nnx.state(model, nnx.Param).keys()) == {"values", "bias"}
    assert set(nnx.state(model, sparseinit.flax.CondensedIndices).keys()) == {"indices"}

    x = jax.random.normal(jax.random.key(1), (32, 64))
    target = jax.random.normal(jax.random.key(2), (32, 8))

    def loss_fn(model):
        return jnp.mean((model(x) - target) ** 2)

    @nnx.jit
    def step(model, optimizer):
        loss, grads = nnx.value_and_grad(loss_fn)(model)
        optimizer.update(model, grads)
        return loss

    losses = [float(step(model, optimizer)) for _ in range(20)]
    assert losses[-1] < 0.9 * losses[0]
    np.testing.assert_array_equal(model.indices[...], indices)
    assert not np.array_equal(model.values[...], initial)
    assert model.condensed().k == 16  # ceil(0.75 * 64) zeros of 64 inputs


def test_condensed_linear_rejects_initializers_without_a_per_output_support():
    with pytest.raises(ValueError, match=r"^CondensedLinear: kernel_init must be a sparseinit"):
        sparseinit.flax.CondensedLinear(
            8, 4, kernel_init=nnx.initializers.lecun_normal(), rngs=nnx.Rngs(0)
        )
    with pytest.raises(ValueError, match=r"^CondensedLinear: kernel_init must count its zeros"):
        sparseinit.flax.CondensedLinear(
            8, 4, kernel_init=sparseinit.torch_sparse(0.5), rngs=nnx.Rngs(0)
        )


def test_linen_condensed_dense_is_nn_dense_with_the_same_key():
    init = sparseinit.sparse(0.8)
    x = jax.random.normal(jax.random.key(1), (5, 50))
    layer = sparseinit.flax.CondensedDense(12, kernel_init=init)
    variables = layer.init(jax.random.key(0), x)
    assert jax.tree.map(jnp.shape, variables) == {
        "params": {"bias": (12,), "values": (10, 12)},
        "sparsity": {"indices": (10, 12)},
    }
    dense = nn.Dense(12, kernel_init=init).init(jax.random.key(0), x)["params"]
    kernel = sparseinit.Condensed(
        variables["params"]["values"], variables["sparsity"]["indices"], (50, 12), (1,)
    )
    np.testing.assert_array_equal(kernel.todense(), dense["kernel"])
    np.testing.assert_allclose(
        layer.apply(variables, x), x @ dense["kernel"] + dense["bias"], rtol=1e-5, atol=1e-6
    )
    # An optimizer of params sees the kept weights and the bias only, and they train.
    grads = jax.grad(lambda p: jnp.sum(layer.apply({**variables, "params": p}, x) ** 2))(
        variables["params"]
    )
    assert jax.tree.map(jnp.shape, grads) == {"bias": (12,), "values": (10, 12)}
    with pytest.raises(Exception, match=r"indices|sparsity"):
        layer.apply({"params": variables["params"]}, x)
