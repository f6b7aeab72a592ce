"""Flax nnx and linen layers built with sparseinit initializers: the counts land per neuron."""

import math

import jax
import jax.numpy as jnp
import numpy as np
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
    with pytest.raises(TypeError):
        sparseinit.flax.embed(0.5, in_axis=0)  # the embedding's axes are fixed


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
