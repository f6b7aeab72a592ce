"""sparsity_report: per-kernel counts of a pytree, as numbers and as a readable table.

Neurons are counted by the initializers' own layout code, so for every layout the report gives
exactly the count the initializer was asked for; kernels and other parameters are apart. Inputs
that feed no neuron are counted per fan-in position and batch index.
"""

import math
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sparseinit
from sparseinit.report import sparsity_report
from tests.test_count import exact_count, fan_in_of, layouts


def _params():
    return {
        "conv": {"kernel": sparseinit.sparse(0.5)(jax.random.key(0), (3, 3, 4, 8))},
        "dense": {
            "kernel": sparseinit.sparse(0.9)(jax.random.key(1), (100, 10)),
            "bias": jnp.zeros(10),
        },
        "step": 3,  # not an array: skipped
    }


def test_counts():
    report = sparsity_report(_params())
    assert [row.path for row in report.rows] == ["conv/kernel", "dense/bias", "dense/kernel"]
    conv, bias, dense = report.rows
    assert (conv.shape, conv.zeros_min, conv.zeros_max, conv.nonzero) == ((3, 3, 4, 8), 18, 18, 144)
    assert (conv.neurons, conv.dead) == (8, 0)
    assert (bias.zeros_min, bias.nonzero, bias.sparsity) == (None, 0, 1.0)
    assert (bias.neurons, bias.dead, bias.is_kernel) == (None, None, False)
    assert (dense.zeros_min, dense.nonzero) == (90, 100)
    assert report.kernels == (conv, dense)
    assert report.others == (bias,)
    # The totals are the kernels': the zero bias is not a sparse kernel.
    assert report.nonzero == 244
    assert report.size == 288 + 1000
    assert report.sparsity == pytest.approx(1 - 244 / 1288)


def test_a_zero_bias_does_not_change_the_kernel_sparsity():
    # The issue: a 50% kernel plus its zero bias reported 60%.
    kernel = sparseinit.sparse(0.5)(jax.random.key(0), (4, 2))
    report = sparsity_report({"kernel": kernel, "bias": jnp.zeros(2)})
    assert report.sparsity == 0.5
    assert report["bias"].sparsity == 1.0
    text = str(report)
    total = next(line for line in text.splitlines() if line.startswith("total")).split()
    assert total[:2] == ["total", "0"]
    assert total[-4:] == ["50.0%", "4", "/", "8"]
    assert "other parameters (not in the total)" in text


def test_dead_neurons_are_counted_and_marked():
    key = jax.random.key(0)
    params = {
        "first": sparseinit.sparse(0.9)(key, (4, 64)),  # ceil(3.6) = 4 zeros of 4 inputs
        "kept": sparseinit.sparse(0.9, min_kept=1)(key, (4, 64)),
        "wide": sparseinit.sparse(0.9)(key, (64, 8)),
    }
    report = sparsity_report(params)
    assert (report["first"].dead, report["first"].neurons, report["first"].zeros_min) == (64, 64, 4)
    assert (report["kept"].dead, report["kept"].zeros_max) == (0, 3)
    assert report["wide"].dead == 0
    assert report.dead == 64
    lines = str(report).splitlines()
    first = next(line for line in lines if line.startswith("first"))
    assert first.split()[3:6] == ["4", "64/64", "!"]
    assert next(line for line in lines if line.startswith("kept")).split()[3:5] == ["3", "0"]
    total = next(line for line in lines if line.startswith("total"))
    assert total.split()[1:3] == ["64/136", "!"]
    hint = next(i for i, line in enumerate(lines) if line.startswith("! 1 kernel has dead"))
    assert "min_kept=1" in lines[hint + 1]


def test_a_few_dead_neurons():
    w = np.ones((5, 3), np.float32)
    w[:, 1] = 0
    report = sparsity_report({"w": w})
    assert (report["w"].dead, report["w"].zeros_min, report["w"].zeros_max) == (1, 0, 5)
    assert "1/3 !" in str(report)
    clean = str(sparsity_report({"w": np.ones((5, 3))}))
    assert "!" not in clean


def test_cut_inputs_of_a_dense_kernel():
    w = np.zeros((5, 3), np.float32)  # (in, out)
    w[0, 0] = 1.0
    w[2, :] = 1.0
    w[4, 1] = -2.0  # inputs 1 and 3 feed no neuron
    row = sparsity_report({"w": w})["w"]
    assert (row.inputs, row.cut_inputs, row.dead) == (5, 2, 0)
    # Equinox's (out, in): the same weights transposed, with the neuron axis first.
    assert sparsity_report({"w": w.T}, out_axis=0)["w"].cut_inputs == 2


def test_cut_inputs_of_a_conv_kernel_are_counted_per_receptive_field_position():
    w = np.zeros((2, 2, 3, 4), np.float32)  # (h, w, in, out): an input is an (h, w, in) position
    w[0, 0, 0, 1] = 1.0
    w[1, 1, 2, :] = 1.0
    w[0, 1, 1, 3] = 0.5
    row = sparsity_report({"w": w})["w"]
    assert (row.inputs, row.cut_inputs) == (12, 9)
    assert row.dead == 0  # every neuron keeps a weight, yet 9 of 12 inputs reach none


def test_cut_inputs_are_counted_per_batch_index():
    w = np.ones((2, 4, 3), np.float32)  # (ensemble, in, out)
    w[0, 1, :] = 0  # input 1 of member 0
    w[1, 1:3, :] = 0  # inputs 1 and 2 of member 1
    row = sparsity_report({"w": w}, batch_axis=0)["w"]
    assert (row.inputs, row.cut_inputs) == (8, 3)
    # Taken as one layer with two output axes, only input 1 is cut from both members.
    row = sparsity_report({"w": w}, out_axis=(0, 2))["w"]
    assert (row.inputs, row.cut_inputs) == (4, 1)


def test_a_dense_kernel_has_no_cut_inputs():
    w = sparseinit.sparse(0.0)(jax.random.key(0), (128, 3))
    report = sparsity_report({"w": w, "ones": np.ones((3, 3, 8, 4))})
    assert (report["w"].inputs, report["w"].cut_inputs) == (128, 0)
    assert (report["ones"].inputs, report["ones"].cut_inputs) == (72, 0)
    assert report.cut_inputs == 0
    assert "!" not in str(report)


def test_a_small_head_leaves_most_inputs_cut_off():
    # 128 -> 3 at 0.9: each action keeps 12 of 128 inputs, so an input reaches no action with
    # probability (116/128)**3 = 0.744; the count over 128 inputs has a standard deviation of
    # 1.54 (the draws of one neuron are without replacement), over 100 heads of 15.4.
    expected = 128 * (116 / 128) ** 3
    head = sparseinit.sparse(0.9)(jax.random.key(0), (128, 3))
    row = sparsity_report({"head": head})["head"]
    assert (row.zeros_min, row.zeros_max, row.dead) == (116, 116, 0)
    assert abs(row.cut_inputs - expected) < 5
    heads = sparseinit.sparse(0.9, batch_axis=0)(jax.random.key(1), (100, 128, 3))
    rows = sparsity_report({"heads": heads}, batch_axis=0)["heads"]
    assert rows.inputs == 12800
    assert abs(rows.cut_inputs - 100 * expected) < 50
    lines = str(sparsity_report({"head": head})).splitlines()
    assert lines[3].split()[5:7] == [f"{row.cut_inputs}/128", "!"]
    assert lines[-2] == (
        "! 1 kernel has inputs that feed no neuron: they stay cut off if the support is held"
    )
    assert lines[-1] == "  fixed (keep_sparsity, CondensedLinear); fine when zeros may move"


def test_the_table_of_the_papers_minatar_network_fits_100_columns():
    # The demo's network on MinAtar: a 3x3 conv of 16 filters, 1024 -> 128, 128 -> 3 actions,
    # with long Flax paths, large counts and both warnings in the total.
    keys = jax.random.split(jax.random.key(0), 3)
    init = sparseinit.sparse(0.9)
    params = {
        "convs": {0: {"kernel": init(keys[0], (3, 3, 4, 16)), "bias": jnp.zeros(16)}},
        "layers": {0: {"kernel": init(keys[1], (1024, 128)), "bias": jnp.zeros(128)}},
        "norms": {0: {"scale": jnp.ones(128), "bias": jnp.zeros(128)}},
        "head": {"kernel": init(keys[2], (128, 3)), "bias": jnp.zeros(3)},
        "tiny": {"kernel": init(keys[2], (4, 4096))},  # every neuron dead
    }
    lines = str(sparsity_report(params)).splitlines()
    assert "cut inputs" in lines[1]
    assert max(map(len, lines)) <= 100


# Each example makes a new shape: a few examples of small shapes.
@settings(max_examples=8)
@given(
    layout=layouts(),
    sparsity=st.sampled_from([0.0, 0.25, 0.5, 0.75, 0.9, 1.0]),
    seed=st.integers(0, 2**31 - 1),
)
def test_counts_follow_the_initializers_layout(layout, sparsity, seed):
    # Batch axes and several output axes: the report's neurons are the initializer's.
    shape, in_axis, out_axis, batch_axis = layout
    init = sparseinit.sparse(sparsity, in_axis=in_axis, out_axis=out_axis, batch_axis=batch_axis)
    w = init(jax.random.key(seed), shape)
    row = sparsity_report({"w": w}, out_axis=out_axis, batch_axis=batch_axis)["w"]
    fan_in = fan_in_of(shape, out_axis, batch_axis)
    zeros = exact_count(sparsity, fan_in, "ceil")
    assert (row.zeros_min, row.zeros_max) == (zeros, zeros)
    assert row.neurons == math.prod(shape) // fan_in
    assert row.dead == (row.neurons if zeros == fan_in else 0)
    outs = (out_axis,) if isinstance(out_axis, int) else out_axis
    assert row.inputs == math.prod(shape) // math.prod(shape[a] for a in outs)
    if zeros == fan_in:
        assert row.cut_inputs == row.inputs
    if zeros == 0:
        assert row.cut_inputs == 0


def test_batch_axis_of_an_ensemble():
    w = sparseinit.sparse(0.5, batch_axis=0)(jax.random.key(0), (3, 10, 4))
    row = sparsity_report({"w": w}, batch_axis=0)["w"]
    assert (row.neurons, row.zeros_min, row.zeros_max) == (12, 5, 5)
    assert "batch_axis=0" in str(sparsity_report({"w": w}, batch_axis=0)).splitlines()[0]


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"out_axis": 0, "batch_axis": 0}, r"out_axis and batch_axis must differ"),
        ({"out_axis": (0, 1)}, r"out_axis=\(0, 1\) and batch_axis=\(\) leave no fan-in axis in w"),
        ({"out_axis": -1, "batch_axis": 5}, r"batch_axis must be an axis of w"),
        ({"out_axis": True}, r"out_axis must be an int or a sequence of ints, got True"),
    ],
)
def test_bad_axes(kwargs, pattern):
    with pytest.raises(ValueError, match=rf"^sparsity_report: {pattern}"):
        sparsity_report({"w": np.ones((3, 4))}, **kwargs)


def test_the_table_says_which_axis_is_the_output():
    w = {"w": np.ones((3, 4))}
    assert str(sparsity_report(w)).splitlines()[0] == (
        "kernels (neuron axis -1: Flax's (..., in, out); pass out_axis=0 for (out, in, ...))"
    )
    assert (
        str(sparsity_report(w, out_axis=0)).splitlines()[0] == "kernels (neuron axes: out_axis=0)"
    )


def test_uneven_neurons_show_a_range():
    w = np.ones((5, 3), np.float32)
    w[:2, 0] = 0
    w[:4, 2] = 0
    row = sparsity_report({"w": w}).rows[0]
    assert (row.zeros_min, row.zeros_max) == (0, 4)
    assert "0..4" in str(sparsity_report({"w": w}))


def test_out_axis_and_callable():
    w = sparseinit.sparse(0.75, in_axis=1, out_axis=0)(jax.random.key(0), (6, 40))  # (out, in)
    assert sparsity_report({"w": w}, out_axis=0)["w"].zeros_min == 30
    assert sparsity_report({"w": w}, out_axis=lambda path, shape: 0)["w"].zeros_max == 30
    assert sparsity_report({"w": w})["w"].zeros_min != 30  # the wrong axis: per input
    with pytest.raises(ValueError, match="out_axis must be an axis"):
        sparsity_report({"w": w}, out_axis=2)


def _flag(count, of):
    return f"{count}/{of} !".split() if count else ["0"]


def test_table_is_readable():
    report = sparsity_report(_params())
    text = str(report)
    lines = text.splitlines()
    assert lines[0].startswith("kernels (neuron axis -1")
    assert lines[1].split() == [
        "parameter",
        "shape",
        "zeros/neuron",
        "dead",
        "cut",
        "inputs",
        "sparsity",
        "non-zero",
    ]
    conv, dense = report["conv/kernel"], report["dense/kernel"]
    assert (conv.inputs, dense.inputs) == (36, 100)
    assert lines[3].split()[:2] == ["conv/kernel", "(3,"]
    assert lines[3].split()[5:] == ["18", "0", *_flag(conv.cut_inputs, 36), "50.0%", "144"]
    assert lines[4].split()[:2] == ["dense/kernel", "(100,"]
    assert lines[4].split()[3:] == ["90", "0", *_flag(dense.cut_inputs, 100), "90.0%", "100"]
    assert dense.cut_inputs > 0  # 10 neurons keep 10 of 100 inputs each
    cut = _flag(report.cut_inputs, 136)
    assert lines[6].split() == ["total", "0", *cut, "81.1%", "244", "/", "1,288"]
    # Columns line up: every row is as wide as the header's rule.
    assert len({len(line) for line in lines[1:3]}) == 1
    assert lines[7].startswith("! 1 kernel has inputs") or lines[7].startswith("! 2 kernels")
    assert lines[8] == "  fixed (keep_sparsity, CondensedLinear); fine when zeros may move"
    assert lines[9:] == [
        "",
        "other parameters (not in the total)",
        "parameter   shape  sparsity  non-zero",
        "----------  -----  --------  --------",
        "dense/bias  (10,)    100.0%    0 / 10",
    ]


def test_linen_params():
    from flax import linen as nn

    model = nn.Dense(10, kernel_init=sparseinit.sparse(0.9))
    params = model.init(jax.random.key(0), jnp.ones((1, 100)))
    report = sparsity_report(params)
    assert report["params/kernel"].zeros_min == 90


def test_submodules_are_attributes_after_import_sparseinit():
    # The issue: `import sparseinit; sparseinit.flax.report(m)` raised AttributeError.
    code = (
        "import sys, sparseinit\n"
        "assert 'flax' not in sys.modules and 'optax' not in sys.modules\n"
        "from flax import nnx\n"
        "m = nnx.Linear(100, 8, kernel_init=sparseinit.sparse(0.9), rngs=nnx.Rngs(0))\n"
        "print(sparseinit.flax.report(m)['kernel'].zeros_min)\n"
        "print(sparseinit.optax.keep_sparsity.__name__)\n"
        "print(sparseinit.report.sparsity_report.__name__)\n"
        "print('flax' in dir(sparseinit))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["90", "keep_sparsity", "sparsity_report", "True"]
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        _ = sparseinit.nope


def test_import_sparseinit_stays_light():
    code = (
        "import sys, sparseinit, sparseinit.report\n"
        "print(sorted(m for m in ('flax', 'optax', 'equinox') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
