"""sparsity_report: per-kernel counts of a pytree, as numbers and as a readable table."""

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sparseinit
from sparseinit.report import sparsity_report


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
    assert (bias.zeros_min, bias.nonzero, bias.sparsity) == (None, 0, 1.0)
    assert (dense.zeros_min, dense.nonzero) == (90, 100)
    assert report.nonzero == 244
    assert report.size == 288 + 10 + 1000
    assert report.sparsity == pytest.approx(1 - 244 / 1298)


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


def test_table_is_readable():
    text = str(sparsity_report(_params()))
    lines = text.splitlines()
    assert lines[0].split() == ["parameter", "shape", "zeros/neuron", "sparsity", "non-zero"]
    assert lines[2].split()[:2] == ["conv/kernel", "(3,"]
    assert lines[2].split()[-3:] == ["18", "50.0%", "144"]
    assert lines[-1].split() == ["total", "81.2%", "244", "/", "1,298"]
    # Columns line up: every row is as wide as the header's rule.
    assert len({len(line) for line in lines[:2]}) == 1


def test_linen_params():
    from flax import linen as nn

    model = nn.Dense(10, kernel_init=sparseinit.sparse(0.9))
    params = model.init(jax.random.key(0), jnp.ones((1, 100)))
    report = sparsity_report(params)
    assert report["params/kernel"].zeros_min == 90


def test_import_sparseinit_stays_light():
    code = (
        "import sys, sparseinit, sparseinit.report\n"
        "print(sorted(m for m in ('flax', 'optax', 'equinox') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
