"""``Layout``: which axes are neurons and which are fan-in, and the 2-D view of an array."""

import jax.numpy as jnp
import numpy as np
import pytest

from sparseinit._layout import Layout


@pytest.mark.parametrize(
    ("shape", "out_axes", "batch_axes", "neuron_axes", "fan_axes", "num_neurons", "fan_in"),
    [
        ((784, 256), (1,), (), (1,), (0,), 256, 784),  # Dense (in, out)
        ((256, 784), (0,), (), (0,), (1,), 256, 784),  # PyTorch-style (out, in)
        ((3, 3, 16, 32), (3,), (), (3,), (0, 1, 2), 32, 144),  # Conv (h, w, in, out)
        ((5, 16, 8), (2,), (0,), (0, 2), (1,), 40, 16),  # an ensemble of 5 Dense kernels
        ((2, 3, 4, 5), (3, 0), (), (0, 3), (1, 2), 10, 12),  # axes given out of order
        ((4, 0, 3), (2,), (), (2,), (0, 1), 3, 0),  # a zero-size fan-in
    ],
)
def test_axes_and_sizes(shape, out_axes, batch_axes, neuron_axes, fan_axes, num_neurons, fan_in):
    layout = Layout.of(shape, out_axes, batch_axes)
    assert layout.shape == shape
    assert layout.neuron_axes == neuron_axes
    assert layout.fan_axes == fan_axes
    assert layout.num_neurons == num_neurons
    assert layout.fan_in == fan_in
    if layout.neurons_last:
        assert layout.view_shape == (fan_in, num_neurons)
        assert layout.neuron_dim == 1
    else:
        assert layout.view_shape == (num_neurons, fan_in)
        assert layout.neuron_dim == 0


def test_view_is_a_reshape_for_flax_and_torch_layouts():
    # Flax Dense (in, out) and Conv (h, w, in, out): neurons last, the view is (fan_in, out).
    assert Layout.of((4, 3), (1,), ()).neurons_last
    assert Layout.of((4, 3), (1,), ()).is_reshape
    assert Layout.of((3, 3, 2, 5), (3,), ()).is_reshape
    # PyTorch-style (out, in): neurons first, the view is (out, in) as it stands.
    assert not Layout.of((4, 3), (0,), ()).neurons_last
    assert Layout.of((4, 3), (0,), ()).is_reshape
    # An ensemble (batch, in, out): neuron axes 0 and 2 need a transpose.
    assert not Layout.of((2, 4, 3), (2,), (0,)).is_reshape


def _arange(shape):
    # Distinct values, so a misplaced element cannot go unnoticed.
    return np.arange(np.prod(shape), dtype=np.float32).reshape(shape)


def _rows(layout, x):
    # The view with neurons as rows, whichever orientation the layout picked.
    view = np.asarray(layout.to_view(jnp.asarray(x)))
    return view.T if layout.neuron_dim == 1 else view


@pytest.mark.parametrize(
    ("shape", "out_axes", "batch_axes"),
    [
        ((4, 3), (1,), ()),
        ((4, 3), (0,), ()),
        ((3, 3, 2, 5), (3,), ()),
        ((2, 3, 4, 5), (1,), (3,)),
        ((2, 3, 4, 5), (0, 2), ()),
        ((2, 3, 4, 5, 1), (4, 1), (2,)),
        ((3, 0), (1,), ()),
    ],
)
def test_view_round_trip(shape, out_axes, batch_axes):
    layout = Layout.of(shape, out_axes, batch_axes)
    x = _arange(shape)
    view = layout.to_view(jnp.asarray(x))
    assert view.shape == layout.view_shape
    np.testing.assert_array_equal(np.asarray(layout.from_view(view)), x)
    # Every element appears exactly once in the view.
    np.testing.assert_array_equal(np.sort(np.asarray(view), axis=None), x.ravel())


def test_rows_are_neurons():
    # Dense (in, out): a row is one output's incoming weights, the kernel's column.
    x = _arange((4, 3))
    np.testing.assert_array_equal(_rows(Layout.of((4, 3), (1,), ()), x), x.T)
    # Conv (h, w, in, out): a row is one output channel's h * w * in weights.
    x = _arange((3, 3, 2, 5))
    rows = _rows(Layout.of(x.shape, (3,), ()), x)
    np.testing.assert_array_equal(rows, x.reshape(-1, 5).T)
    # An ensemble (batch, in, out): rows run over (batch, out), batch first.
    x = _arange((2, 4, 3))
    rows = _rows(Layout.of(x.shape, (2,), (0,)), x)
    np.testing.assert_array_equal(rows, x.transpose(0, 2, 1).reshape(6, 4))
    np.testing.assert_array_equal(rows[1 * 3 + 2], x[1, :, 2])
