"""Equinox: ``eqx.nn.Linear`` stores ``(out, in)``; per-neuron sparsity needs ``out_axis=0``.

The report knows Equinox's layout when given an Equinox module.
"""

import equinox as eqx
import jax
import numpy as np

import sparseinit
from sparseinit.report import sparsity_report


def sparse_linear(layer: eqx.nn.Linear, key, sparsity=0.9) -> eqx.nn.Linear:
    # The recipe of docs/integrations.md: redraw the weight with the neuron axis first.
    init = sparseinit.sparse(sparsity, in_axis=1, out_axis=0)
    weight = init(key, layer.weight.shape, layer.weight.dtype)
    return eqx.tree_at(lambda lin: lin.weight, layer, weight)


def test_linear_recipe_counts_per_output_neuron():
    layer = eqx.nn.Linear(100, 16, key=jax.random.key(0))
    sparse = sparse_linear(layer, jax.random.key(1))
    weight = np.asarray(sparse.weight)
    assert weight.shape == (16, 100)
    assert set((weight == 0).sum(axis=1).tolist()) == {90}  # per row: one output neuron
    np.testing.assert_array_equal(sparse.bias, layer.bias)
    assert sparse(np.ones(100, np.float32)).shape == (16,)


def test_default_axes_would_count_per_input():
    # Without the axes the same call treats the 100 columns as neurons: the wrong count.
    weight = np.asarray(sparseinit.sparse(0.9)(jax.random.key(1), (16, 100)))
    assert set((weight == 0).sum(axis=0).tolist()) == {15}  # ceil(0.9 * 16)
    assert len(set((weight == 0).sum(axis=1).tolist())) > 1


def test_whole_model_and_report():
    model = eqx.nn.MLP(8, 2, width_size=32, depth=2, key=jax.random.key(0))
    keys = iter(jax.random.split(jax.random.key(1), 8))
    is_linear = lambda x: isinstance(x, eqx.nn.Linear)  # noqa: E731
    model = jax.tree.map(
        lambda x: sparse_linear(x, next(keys), 0.5) if is_linear(x) else x, model, is_leaf=is_linear
    )
    report = sparsity_report(model, out_axis=0)
    kernels = [row for row in report.rows if len(row.shape) == 2]
    assert [row.shape for row in kernels] == [(32, 8), (32, 32), (2, 32)]
    assert [(row.zeros_min, row.zeros_max) for row in kernels] == [(4, 4), (16, 16), (16, 16)]


def test_report_finds_the_equinox_layout():
    # The issue: without out_axis=0 the report counted per input (10 to 19 zeros) where every
    # neuron has 4. An Equinox module is recognised, and the table says which axis it took.
    model = eqx.nn.MLP(8, 2, width_size=32, depth=2, key=jax.random.key(0))
    keys = iter(jax.random.split(jax.random.key(1), 8))
    is_linear = lambda x: isinstance(x, eqx.nn.Linear)  # noqa: E731
    model = jax.tree.map(
        lambda x: sparse_linear(x, next(keys), 0.5) if is_linear(x) else x, model, is_leaf=is_linear
    )
    report = sparsity_report(model)
    assert [(row.zeros_min, row.zeros_max) for row in report.kernels] == [
        (4, 4),
        (16, 16),
        (16, 16),
    ]
    assert [row.neurons for row in report.kernels] == [32, 32, 2]
    assert [row.path for row in report.others] == [
        "layers/0/bias",
        "layers/1/bias",
        "layers/2/bias",
    ]
    assert str(report).splitlines()[0] == "kernels (neuron axis 0: Equinox's (out, in, ...))"
    # The same weights outside a module: the Flax default, and the table says so.
    plain = sparsity_report({"weight": model.layers[0].weight})
    assert plain["weight"].zeros_min != 4
    assert "pass out_axis=0 for (out, in, ...)" in str(plain).splitlines()[0]


def test_report_of_an_equinox_conv():
    conv = eqx.nn.Conv2d(4, 8, kernel_size=3, key=jax.random.key(0))
    init = sparseinit.sparse(0.5, in_axis=1, out_axis=0)
    conv = eqx.tree_at(lambda c: c.weight, conv, init(jax.random.key(1), conv.weight.shape))
    row = sparsity_report(conv)["weight"]
    assert (row.neurons, row.zeros_min, row.zeros_max, row.dead) == (8, 18, 18, 0)
