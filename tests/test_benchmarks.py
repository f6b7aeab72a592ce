"""The benchmark harness: its baselines, its report and a tiny end-to-end run.

No timing is asserted: the figures depend on the machine. What is checked is that the harness
measures what it says (the naive baseline is as sparse as the library, the condensed programs
compute what the dense kernel does), that the report's figures follow from the measurements and
fit a page, and that a real run, with a large fan-in child and a condensed kernel at stand-in
sizes, writes a complete report.
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
from benchmarks import condensed, fresh, measure, render, run

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


@pytest.mark.parametrize("library_generator", [True, False])
def test_one_sort_is_exact_and_independent_per_neuron(monkeypatch, library_generator):
    if not library_generator:
        # As where sparseinit's private generator cannot be imported.
        monkeypatch.setattr(measure, "_library_bits", None)
        monkeypatch.setattr(measure, "_library_uniform", None)
    elif measure._library_bits is None:
        pytest.skip("this sparseinit has no written-out generator")
    # (8, 3, 5): fan-in 24, sparsity 0.4 gives ceil(9.6) = 10 zeros per neuron; a tie between
    # two of a neuron's 24 words has probability about 24**2 / 2**33 for this fixed key.
    key = jax.random.key(5)
    shape = (8, 3, 5)
    # A new function each time: a jit of one_sort itself would reuse its earlier trace.
    weights = np.asarray(jax.jit(lambda k: measure.one_sort(k, shape, 0.4))(key))
    np.testing.assert_array_equal(_zeros_per_neuron(weights), 10)
    assert float(np.abs(weights).max()) <= 1 / math.sqrt(24)
    masks = {tuple(column) for column in (weights == 0).reshape(-1, shape[-1]).T}
    assert len(masks) == shape[-1]
    dense = np.asarray(measure.one_sort(key, (6, 4), 0.0))
    assert (dense != 0).all()


# ---- the report ---------------------------------------------------------------------------
def _warm(ms):
    return measure.Warm(calls_per_repeat=1, repeats=[ms / 1e3])


def _row(shape, sparsity, dense_ms, sparse_ms, naive_ms):
    return measure.Row(
        shape=shape,
        sparsity=sparsity,
        warm={"dense": _warm(dense_ms), "sparse": _warm(sparse_ms), "naive": _warm(naive_ms)},
    )


def _first_calls(shape, dense, sparse, peaks=(None, None)):
    # dense: seconds of each sample; sparse: {sparsity: seconds of each sample}.
    samples = {("dense", None): [fresh.Sample(s, peaks[0]) for s in dense]}
    for sparsity, seconds in sparse.items():
        samples["sparse", sparsity] = [fresh.Sample(s, peaks[1]) for s in seconds]
    return fresh.FirstCalls(shape, samples)


def _tables(text):
    """Every Markdown table of a report, as lists of rows of cells."""
    tables, current = [], []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            current.append([cell.strip() for cell in line.strip().strip("|").split("|")])
        elif current:
            tables.append(current)
            current = []
    return tables


def _full_report():
    rows = [_row((784, 256), 0.9, 2.0, 1.0, 30.0), _row((4096, 4096), 0.5, 100.0, 40.0, 5000.0)]
    rows[0].anchors = {"torch sparse_": 4.0, "reference loop": 8.0}
    first = [_first_calls((784, 256), [0.1, 0.3, 0.2], {0.9: [0.25, 0.5, 0.4]})]
    large = [_first_calls((150528, 64), [1.0], {0.5: [1.5], 0.9: [3.0]}, (40 * 2**20, 50 * 2**20))]
    cold = {
        kind: {"total": [1.0], "imports": [0.5], "build": [0.5]} for kind in ("dense", "sparse")
    }
    # Condensed 4x and masked 1.5x the dense milliseconds, in each program.
    warm = {
        (kind, op): _warm(ms * factor)
        for op, ms in (("forward", 2.0), ("backward", 6.0), ("stream", 8.0))
        for kind, factor in (("dense", 1.0), ("condensed", 4.0), ("masked", 1.5))
    }
    sizes = {"dense": 3 * 2**20, "condensed": 2**19, "masked": 3.25 * 2**20}
    results = condensed.Results(
        [condensed.Case((1024, 1024), 0.9, 32, warm)], {((1024, 1024), 0.9): sizes}
    )
    return render.report(
        [("date", "today"), ("CPU", "a CPU")],
        {"run": "test"},
        render.Report(rows=rows, first=first, large=large, condensed=results, cold=cold),
    )


def test_report_has_one_title_and_narrow_tables_and_no_targets():
    text = _full_report()
    assert [line for line in text.splitlines() if line.startswith("# ")] == [
        "# sparseinit benchmarks"
    ]
    tables = _tables(text)
    assert len(tables) >= 7
    assert max(len(row) for t in tables for row in t) <= 7
    assert "target" not in text.lower()
    assert "met" not in re.findall(r"\w+", text)


def test_first_calls_are_reported_as_median_range_and_ratio():
    text = _full_report()
    cells = _table_row(_section(text, "## First call"), "| 784x256 | 0.9 |")
    # dense 100, 200, 300 ms: median 200; sparse 250, 400, 500: median 400, twice dense.
    assert cells[2:5] == ["200 (100-300)", "400 (250-500)", "2.00x"]
    assert cells[5:] == ["-", "-"]


def test_large_fanins_report_time_and_peak_memory_ratios():
    section = _section(_full_report(), "## Large fan-ins")
    assert _table_row(section, "| 150528x64 | 0.9 | 1,000 |") == [
        "150528x64",
        "0.9",
        "1,000",
        "3,000",
        "3.00x",
    ]
    # Output 150528 * 64 * 4 bytes = 36.75 MiB; peaks 40 and 50 MiB.
    assert _table_row(section, "| 150528x64 | 0.5 | 36.8 |")[3:] == ["40", "50", "1.25x"]


def test_condensed_kernels_are_reported_as_ratios_to_dense():
    tables = _tables(_full_report().split("## Condensed kernels", 1)[1])
    programs, sizes = tables[:3], tables[3]
    for table, dense in zip(programs, ("2", "6", "8"), strict=True):
        assert table[2] == ["1024x1024", "0.9", "32", dense, str(4 * int(dense)), "4.00x", "1.50x"]
    assert sizes[2] == ["1024x1024", "0.9", "3", "0.5", "0.17x", "3.25", "1.08x"]


def test_a_failed_child_is_reported_not_fatal(monkeypatch):
    def failing(kind, shape, sparsity):
        if kind == "sparse":
            raise RuntimeError("child failed with exit code -9:\nKilled")
        return fresh.Sample(0.1, 2**20)

    monkeypatch.setattr(fresh, "first_call", failing)
    calls = fresh.first_calls((8, 4), [("dense", None), ("sparse", 0.9)], 3, lambda _: None)
    assert len(calls.samples["dense", None]) == 3
    assert calls.samples["sparse", 0.9] == []
    assert calls.failed == {("sparse", 0.9): "child failed with exit code -9:"}
    section = render.report([], {}, render.Report(rows=[], large=[calls]))
    assert "sparse at 8x4, 0.9 failed: child failed with exit code -9:" in section


def test_pytorch_anchors_are_reported_as_ratios_where_measured():
    timed = _row((784, 256), 0.5, 2.0, 3.0, 30.0)
    timed.anchors = {"torch sparse_": 6.0, "reference loop": 12.0}
    untimed = _row((1024, 1024), 0.9, 2.0, 1.0, 30.0)
    text = render.report([], {}, render.Report(rows=[timed, untimed]))
    assert _table_row(_section(text, "## PyTorch anchors"), "| 784x256 |") == [
        "784x256",
        "0.5",
        "3",
        "6",
        "0.50x",
        "12",
        "0.25x",
    ]
    assert "1024x1024" not in _section(text, "## PyTorch anchors")
    assert "## PyTorch anchors" not in render.report([], {}, render.Report(rows=[untimed]))


def test_a_child_measures_its_own_memory():
    memory = fresh._memory_kib()
    if memory is None:
        pytest.skip("no /proc/self/status here")
    resident, peak = memory
    assert 0 < resident <= peak


# ---- condensed kernels -----------------------------------------------------------------------
needs_condensed = pytest.mark.skipif(
    not condensed.available(), reason="this sparseinit has no Condensed yet"
)


@needs_condensed
def test_condensed_programs_compute_what_the_dense_kernel_does():
    key = jax.random.key(2)
    shape = (40, 6)
    x = jax.random.normal(jax.random.key(3), (3, 40))
    kernels = {kind: condensed.make_kernel(kind, key, shape, 0.9) for kind in condensed.KINDS}
    ours, masked = kernels["condensed"], kernels["masked"]
    dense_of_ours = ours.params.todense()
    np.testing.assert_allclose(
        condensed.program(ours, "forward", x)(None), x @ dense_of_ours, rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        condensed.program(masked, "forward", x)(None), x @ dense_of_ours, rtol=1e-5, atol=1e-6
    )
    # The masked gradient is the dense one at the kept weights, zero elsewhere; the condensed
    # gradient holds the same kept entries.
    _, masked_grad = condensed.program(masked, "backward", x)(None)
    expected = x.T @ (x @ dense_of_ours) / 3 * masked.params[1]
    np.testing.assert_allclose(masked_grad, expected, rtol=1e-4, atol=1e-6)
    _, grad = condensed.program(ours, "backward", x)(None)
    np.testing.assert_allclose(
        condensed.with_values(ours.params, grad).todense(), expected, rtol=1e-4, atol=1e-6
    )
    # One streaming step from a zero trace: z = g, w += alpha * delta * g.
    stepped, z = condensed.program(ours, "stream", x)(None)
    np.testing.assert_allclose(z, grad, rtol=1e-6)
    np.testing.assert_array_equal(stepped.indices, ours.params.indices)
    step = condensed.STEP_SIZE * condensed.TD_ERROR
    np.testing.assert_allclose(stepped.values, ours.params.values + step * grad, rtol=1e-6)


@needs_condensed
def test_training_bytes_count_the_kernel_and_adams_two_moments():
    shape = (100, 8)
    key = jax.random.key(0)
    dense = condensed.make_kernel("dense", key, shape, 0.9)
    ours = condensed.make_kernel("condensed", key, shape, 0.9)
    masked = condensed.make_kernel("masked", key, shape, 0.9)
    kept = 10 * 8  # ceil(0.9 * 100) = 90 zeros: 10 kept weights per neuron
    count = 4  # Adam's int32 step count
    assert condensed.training_bytes(dense) == 3 * 4 * 800 + count
    index_bytes = ours.params.indices.dtype.itemsize * kept
    assert condensed.training_bytes(ours) == 3 * 4 * kept + index_bytes + count
    assert condensed.training_bytes(masked) == 3 * 4 * 800 + 800 + count


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
    args = ["--quick", "--shapes", "32x16", "--sparsities", "0.9", "--skip-cold"]
    args += ["--large-fanin-shapes", "4096x4", "--condensed-shapes", "64x16", "--batches", "2"]
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), *args, "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    assert text in proc.stdout

    assert [line for line in text.splitlines() if line.startswith("# ")] == [
        "# sparseinit benchmarks"
    ]
    assert max(len(row) for t in _tables(text) for row in t) <= 7
    for field in ("date", "CPU", "cores", "load average", "python", "jax", "jaxlib", "numpy"):
        assert re.search(rf"^\| {field}[^|]* \| \S", text, re.MULTILINE), field
    assert re.search(r"^\| flax \| \S", text, re.MULTILINE)
    assert "| run | quick" in text

    cells = _table_row(_section(text, "## Warm calls"), "| 32x16 | 0.9 |")
    dense, sparse, warm_ratio, naive, speedup = (_number(c) for c in cells[2:])
    assert min(dense, sparse, naive) > 0
    # Ratios are printed to two decimals from unrounded figures: 3 significant digits each.
    assert warm_ratio == pytest.approx(sparse / dense, rel=0.02, abs=0.01)
    assert speedup == pytest.approx(naive / sparse, rel=0.02, abs=0.01)

    sort = _table_row(_section(text, "### One sort per neuron"), "| 32x16 | 0.9 |")
    sort_ms, sort_warm_ratio = (_number(c) for c in sort[2:])
    assert sort_warm_ratio == pytest.approx(sort_ms / dense, rel=0.02, abs=0.01)
    sweep = _table_row(_section(text, "## Sweeps: `jit(vmap)` over 8 keys"), "| 32x16 | 0.9 |")
    dense8, concrete8, traced8, traced_ratio = (_number(c) for c in sweep[2:6])
    assert min(dense8, concrete8, traced8) > 0
    assert traced_ratio == pytest.approx(traced8 / dense8, rel=0.02, abs=0.01)

    # One process each: a single figure, no range.
    first = _table_row(_section(text, "## First call"), "| 32x16 | 0.9 |")
    first_dense, first_sparse, first_ratio, first_sort, sort_ratio = (_number(c) for c in first[2:])
    assert min(first_dense, first_sparse, first_sort) > 0
    assert first_ratio == pytest.approx(first_sparse / first_dense, rel=0.02, abs=0.01)
    assert sort_ratio == pytest.approx(first_sort / first_dense, rel=0.02, abs=0.01)

    memory = _table_row(_section(text, "## Memory of the compiled programs"), "| 32x16 | 0.9 |")
    dense_memory, sparse_memory, sparse_temp, naive_memory = (_number(c) for c in memory[3:])
    # The output alone is one output size; a program cannot need less.
    assert min(dense_memory, sparse_memory, naive_memory) >= 1.0
    assert 0 <= sparse_temp < sparse_memory

    large = _section(text, "## Large fan-ins")
    assert "failed" not in large
    time_row, peak_row = (r for r in _tables(large) for r in r if r[:2] == ["4096x4", "0.9"])
    assert _number(time_row[4]) == pytest.approx(
        _number(time_row[3]) / _number(time_row[2]), rel=0.02, abs=0.01
    )
    output_mib, dense_mib, sparse_mib = (_number(c) for c in peak_row[2:5])
    assert output_mib == pytest.approx(4096 * 4 * 4 / 2**20, rel=0.01)
    if sys.platform == "linux":
        # The output array is resident when the peak is read.
        assert min(dense_mib, sparse_mib) >= output_mib

    if condensed.available():
        # The whole part, its subsections included.
        section = text.split("## Condensed kernels\n", 1)[1].split("\n## ", 1)[0]
        for op in ("### Forward", "### Forward and backward", "### Streaming"):
            assert op in section
        rows = [r for t in _tables(section) for r in t if r[:2] == ["64x16", "0.9"]]
        assert len(rows) == 4  # three programs at batch 2, and the bytes
        assert all(_number(c) > 0 for r in rows for c in r[3:])
    else:
        assert "## Condensed kernels" not in text
    assert "## Cold start" not in text


def test_parts_can_be_left_out_and_run_alone(tmp_path):
    out = tmp_path / "results.md"
    args = ["--quick", "--only", "warm", "first-call", "--skip-first-call", "--skip-naive"]
    args += ["--shapes", "8x4", "--sparsities", "0.5", "--repeats", "1", "--out", str(out)]
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    assert _table_row(_section(text, "## Warm calls"), "| 8x4 | 0.5 |")[5:] == ["-", "-"]
    for absent in ("## First call", "## Large fan-ins", "## Condensed", "## Cold start"):
        assert absent not in text
    assert re.search(r"^\| duration \| [0-9.]+ min \(warm [0-9.]+\) \|$", text, re.MULTILINE)


@pytest.mark.slow
def test_cold_start_times_a_fresh_process():
    figures = fresh.cold_start(sparse=True)
    assert set(figures) == {"total", "imports", "build"}
    assert figures["build"] > 0
    assert figures["imports"] > 0
    # Process start to ready params contains both the imports and the build.
    assert figures["total"] >= figures["imports"] + figures["build"]
