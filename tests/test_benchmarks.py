"""The benchmark harness: its naive baseline, its target bookkeeping and a tiny end-to-end run.

No timing is asserted: the figures depend on the machine. What is checked is that the harness
measures what it says (the naive baseline is as sparse as the library), that every target's
status follows from the numbers, and that a real run writes a complete report.
"""

import math
import re
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

import sparseinit
from benchmarks import measure, render, run

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "run.py"


def _zeros_per_neuron(w):
    w = np.asarray(w)
    return (w == 0).reshape(-1, w.shape[-1]).sum(axis=0)


# ---- the naive baseline is a fair comparison ---------------------------------------------
@pytest.mark.parametrize(
    ("shape", "sparsity", "zeros"),
    [
        ((3, 3, 8, 5), 0.7, 51),  # fan-in 72: 0.7 * 72 = 50.4, ceil gives 51
        ((100, 7), 0.07, 7),  # the decimal product, not the 8 that binary floats give
    ],
)
def test_naive_baseline_has_the_library_count_of_zeros(shape, sparsity, zeros):
    key = jax.random.key(3)
    naive = np.asarray(jax.jit(measure.naive_sparse, static_argnums=(1, 2))(key, shape, sparsity))
    assert naive.shape == shape
    assert naive.dtype == np.float32
    np.testing.assert_array_equal(_zeros_per_neuron(naive), zeros)
    library = sparseinit.sparse(sparsity)(key, shape, np.float32)
    np.testing.assert_array_equal(_zeros_per_neuron(library), zeros)
    bound = 1 / math.sqrt(math.prod(shape[:-1]))
    assert float(np.abs(naive).max()) <= bound
    # One permutation shared by all neurons would give them all the same mask; independent
    # ones coincide with probability about neurons**2 / binom(fan_in, zeros), below 1e-6 here.
    masks = {tuple(column) for column in (naive == 0).reshape(-1, shape[-1]).T}
    assert len(masks) == shape[-1]


def test_one_sort_is_exact_and_independent_per_neuron():
    # (8, 3, 5): fan-in 24, sparsity 0.4 gives ceil(9.6) = 10 zeros per neuron; a tie between
    # two of a neuron's 24 words has probability about 24**2 / 2**33 for this fixed key.
    key = jax.random.key(5)
    shape = (8, 3, 5)
    weights = np.asarray(jax.jit(measure.one_sort, static_argnums=(1, 2))(key, shape, 0.4))
    np.testing.assert_array_equal(_zeros_per_neuron(weights), 10)
    assert float(np.abs(weights).max()) <= 1 / math.sqrt(24)
    masks = {tuple(column) for column in (weights == 0).reshape(-1, shape[-1]).T}
    assert len(masks) == shape[-1]
    dense = np.asarray(measure.one_sort(key, (6, 4), 0.0))
    assert (dense != 0).all()


# ---- targets follow from the numbers -----------------------------------------------------
def _row(shape, sparsity, dense_ms, sparse_ms, naive_ms, first_dense, first_sparse, memory):
    size = 4 * math.prod(shape)

    def warm(ms):
        return measure.Warm(calls_per_repeat=1, repeats=[ms / 1e3])

    return measure.Row(
        shape=shape,
        sparsity=sparsity,
        warm={"dense": warm(dense_ms), "sparse": warm(sparse_ms), "naive": warm(naive_ms)},
        first={"dense": [first_dense], "sparse": [first_sparse]},
        memory={
            "sparse": measure.Memory(
                argument=8, output=size, temp=int(memory * size) - size - 8, alias=0
            )
        },
        steps=3,
    )


def _statuses(targets):
    return {t.what: (t.value, t.status) for t in targets}


def test_targets_are_computed_from_the_figures():
    rows = [
        _row((4096, 4096), 0.9, 10.0, 4.0, 100.0, 1.0, 2.0, 3.0),
        _row((3, 3, 256, 256), 0.9, 2.0, 1.5, 30.0, 1.0, 1.2, 1.5),
        _row((784, 256), 0.5, 2.0, 2.8, 30.0, 1.0, 1.2, 1.5),
    ]
    cold = {
        "dense": {"total": [1.0, 1.2, 1.1], "build": [1.0, 1.0, 1.0]},
        "sparse": {"total": [1.3, 1.4, 1.2], "build": [1.4, 1.4, 1.4]},
    }
    got = _statuses(render.targets(rows, cold))
    assert got["warm `sparse(0.9)` / dense at 4096x4096"] == ("0.40x", "met")
    assert got["warm `sparse(0.9)` / dense at 4096x4096 (aim)"] == ("0.40x", "met")
    assert got["warm `sparse(0.9)` / dense at 3x3x256x256"] == ("0.75x", "met")
    # Below sparsity 0.9 the limit is 1.5x: 1.4x passes.
    assert got["warm `sparse(0.5)` / dense at 784x256"] == ("1.40x", "met")
    assert got["first call / dense at 4096x4096, sparsity 0.9"] == ("2.00x", "**not met**")
    assert got["first call / dense at 3x3x256x256, sparsity 0.9"] == ("1.20x", "met")
    speedup = "warm speed-up over the naive baseline at 4096x4096, sparsity 0.9"
    assert got[speedup] == ("25.00x", "met")
    assert got["memory / output size at 4096x4096, sparsity 0.9"] == ("3.00x", "**not met**")
    assert got["memory / output size at 3x3x256x256, sparsity 0.9"] == ("1.50x", "met")
    # Medians 1.1 and 1.3: a ratio of 1.18, just inside 1.2.
    cold_target = "cold start of the nnx MLP, sparse / dense (process start to ready params)"
    assert got[cold_target] == ("1.18x", "met")
    assert got["eager build of the nnx MLP alone, sparse / dense"] == ("1.40x", "**not met**")


def test_pytorch_anchors_are_reported_as_ratios_where_measured():
    timed = _row((784, 256), 0.5, 2.0, 3.0, 30.0, 1.0, 1.2, 1.5)
    timed.anchors = {"torch sparse_": 6.0, "reference loop": 12.0}
    untimed = _row((1024, 1024), 0.9, 2.0, 1.0, 30.0, 1.0, 1.2, 1.5)
    lines = render.report([], [timed, untimed], None, {}).splitlines()
    section = lines[lines.index("### PyTorch anchors") :]
    start = section.index("|---|---:|---:|---:|---:|---:|---:|") + 1
    table = section[start : section.index("", start)]
    assert table == ["| 784x256 | 0.5 | 3 | 6 | 0.50x | 12 | 0.25x |"]
    assert "### PyTorch anchors" not in render.report([], [untimed], None, {})


def test_unmeasured_targets_are_not_reported_as_met():
    got = _statuses(render.targets([], None))
    assert got
    assert {status for _, status in got.values()} == {"not measured"}


@pytest.mark.parametrize("bad", ["784", "784x0", "axb", "784x-3", ""])
def test_bad_shapes_are_rejected_with_the_value(bad):
    with pytest.raises(Exception, match=re.escape(repr(bad))):
        run.parse_shape(bad)


@pytest.mark.parametrize("bad", ["1.5", "-0.1", "nan", "x"])
def test_bad_sparsities_are_rejected_with_the_value(bad):
    with pytest.raises(Exception, match=re.escape(repr(bad))):
        run.parse_sparsity(bad)


# ---- end to end --------------------------------------------------------------------------
def _section(text, heading):
    # From the heading to the next heading of any level.
    start = text.index(heading + "\n")
    rest = text[start + len(heading) + 1 :]
    end = re.search(r"^#", rest, re.MULTILINE)
    return rest[: end.start()] if end else rest


def _table_row(text, prefix):
    lines = [line for line in text.splitlines() if line.startswith(prefix)]
    assert len(lines) == 1, (prefix, lines)
    return [cell.strip() for cell in lines[0].strip("|").split("|")]


def _number(cell):
    return float(cell.rstrip("x*").strip().replace(",", ""))


def test_quick_run_writes_a_complete_report(tmp_path):
    out = tmp_path / "results.md"
    args = ["--quick", "--shapes", "32x16", "--sparsities", "0.9", "--skip-cold", "--out"]
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), *args, str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    assert text in proc.stdout

    for field in ("date", "platform", "CPU", "cores", "python", "jax", "jaxlib", "flax"):
        assert re.search(rf"^\| {field} \| \S", text, re.MULTILINE), field
    assert "| mode | quick" in text

    cells = _table_row(_section(text, "## Initializers (float32)"), "| 32x16 | 0.9 |")
    assert len(cells) == 12
    dense, sparse, warm_ratio, first_dense, first_sparse, first_ratio, naive, speedup, memory = (
        _number(c) for c in cells[2:11]
    )
    # At sparsity 0.9 a 32-input neuron places its 3 kept weights: one loop iteration.
    assert int(cells[11]) >= 1
    assert all(x > 0 for x in (dense, sparse, first_dense, first_sparse, naive, memory))
    # Ratios are printed to two decimals from unrounded figures: 3 significant digits each.
    assert warm_ratio == pytest.approx(sparse / dense, rel=0.02, abs=0.01)
    assert first_ratio == pytest.approx(first_sparse / first_dense, rel=0.02, abs=0.01)
    assert speedup == pytest.approx(naive / sparse, rel=0.02, abs=0.01)
    # The output alone is one output size; a program cannot need less.
    assert memory >= 1.0

    memory_cells = _table_row(_section(text, "### Memory of each compiled program"), "| 32x16 |")
    assert _number(memory_cells[5]) == memory

    targets = _section(text, "## Targets")
    first = _table_row(targets, "| first call / dense at 32x16, sparsity 0.9 |")
    assert first[-1] == ("met" if first_ratio <= 1.5 else "**not met**")
    mem = _table_row(targets, "| memory / output size at 32x16, sparsity 0.9 |")
    assert mem[-1] == ("met" if memory <= 2.0 else "**not met**")
    one_sort = _table_row(
        _section(text, "### The smallest exact program: one sort per neuron"), "| 32x16 | 0.9 |"
    )
    dense_first, sort_first, sort_ratio, sparse_ratio, sort_ms, sort_warm_ratio = (
        _number(c) for c in one_sort[2:8]
    )
    assert dense_first == first_dense
    assert sort_ratio == pytest.approx(sort_first / first_dense, rel=0.02, abs=0.01)
    assert sparse_ratio == first_ratio
    assert sort_warm_ratio == pytest.approx(sort_ms / dense, rel=0.02, abs=0.01)
    sweep = _table_row(_section(text, "### Sweeps: `jit(vmap)` over 8 keys"), "| 32x16 | 0.9 |")
    dense8, concrete8, traced8, traced_ratio = (_number(c) for c in sweep[2:6])
    assert min(dense8, concrete8, traced8) > 0
    assert traced_ratio == pytest.approx(traced8 / dense8, rel=0.02, abs=0.01)
    # However rounds are sized, a neuron that places kept weights needs at least one.
    assert int(sweep[7]) >= 1
    assert "Not measured in this run." in _section(
        text, "## Cold start of a 784-256-256-10 `nnx` MLP"
    )


@pytest.mark.slow
def test_cold_start_times_a_fresh_process():
    figures = measure.cold_start(sparse=True)
    assert set(figures) == {"total", "imports", "build"}
    assert figures["build"] > 0
    assert figures["imports"] > 0
    # Process start to ready params contains both the imports and the build.
    assert figures["total"] >= figures["imports"] + figures["build"]
