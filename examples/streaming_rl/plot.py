"""The sweep's outputs: a learning-curve figure and a markdown table of final returns.

Intervals are 95% bootstrap percentile intervals over seeds (2,000 resamples of the seeds
with replacement, a fixed generator). A percentile interval lies within the range of the
values resampled, so it respects the bounds of the return (CartPole's 500, for one); a
Student-t interval does not. Beside the mean over seeds the table gives the interquartile
mean (IQM: the mean of the middle 50% of seeds), which one collapsed seed cannot drag down,
as Agarwal et al. (2021) recommend for few runs. A difference to the dense baseline is called
distinguishable when the 95% bootstrap interval of the difference excludes zero.

References:
    Agarwal, Schwarzer, Castro, Courville and Bellemare (2021). Deep Reinforcement Learning at
    the Edge of the Statistical Precipice. NeurIPS.
"""

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

NUM_BOOTSTRAP = 2_000
#: The paper's MinAtar horizon: environment steps per agent.
PAPER_STEPS = 5_000_000


def iqm(x: np.ndarray, axis: int = 0) -> np.ndarray:
    """Interquartile mean along ``axis``: drops the lowest and highest ``floor(n / 4)`` values.

    For 4 to 7 values it drops one at each end; for fewer than 4 it is the mean.
    """
    x = np.sort(np.moveaxis(np.asarray(x, dtype=float), axis, -1), axis=-1)
    cut = x.shape[-1] // 4
    return x[..., cut : x.shape[-1] - cut].mean(axis=-1)


def _mean(x: np.ndarray, axis: int = 0) -> np.ndarray:
    return np.mean(x, axis=axis)


STATISTICS: dict[str, Callable[..., np.ndarray]] = {"mean": _mean, "IQM": iqm}


def _resample(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``NUM_BOOTSTRAP`` resamples of the seeds (axis 0): ``(NUM_BOOTSTRAP, seeds, ...)``."""
    idx = rng.integers(0, x.shape[0], size=(NUM_BOOTSTRAP, x.shape[0]))
    return x[idx]


def bootstrap_ci(
    x: np.ndarray, stat: Callable[..., np.ndarray] = _mean, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The statistic over seeds (axis 0) and its 95% bootstrap percentile interval.

    Returns:
        ``(value, low, high)``, each of the shape of ``x[0]``.
    """
    x = np.asarray(x, dtype=float)
    samples = stat(_resample(x, np.random.default_rng(seed)), axis=1)
    low, high = np.percentile(samples, [2.5, 97.5], axis=0)
    return stat(x, axis=0), low, high


def bootstrap_difference(
    x: np.ndarray, y: np.ndarray, stat: Callable[..., np.ndarray] = _mean, seed: int = 0
) -> tuple[float, float, float]:
    """``stat(x) - stat(y)`` over seeds and its 95% interval, resampling each group on its own."""
    rng = np.random.default_rng(seed)
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    samples = stat(_resample(x, rng), axis=1) - stat(_resample(y, rng), axis=1)
    low, high = np.percentile(samples, [2.5, 97.5])
    return float(stat(x) - stat(y)), float(low), float(high)


def per_chunk_returns(results: dict[str, np.ndarray]) -> np.ndarray:
    """Mean return of the episodes ended in each chunk; carried forward over chunks with none.

    Chunks before an agent's first finished episode count as 0 (no return observed yet).
    """
    sums, counts = results["returns_sum"], results["episodes"]
    curve = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    for i in range(1, curve.shape[-1]):
        curve[..., i] = np.where(np.isnan(curve[..., i]), curve[..., i - 1], curve[..., i])
    return np.nan_to_num(curve, nan=0.0)


def final_returns(results: dict[str, np.ndarray], final_fraction: float) -> np.ndarray:
    """Per agent, the mean return of every episode that ended in the final chunks."""
    num_chunks = results["episodes"].shape[-1]
    last = max(1, math.ceil(final_fraction * num_chunks))
    sums = results["returns_sum"][..., -last:].sum(-1)
    counts = results["episodes"][..., -last:].sum(-1)
    return np.where(counts > 0, sums / np.maximum(counts, 1), 0.0)


def horizon(config: Any) -> str:
    """Steps per agent, and for MinAtar the fraction of the paper's 5M-step horizon."""
    text = f"{config.total_steps:,} steps per agent"
    if config.env_name.endswith("-MinAtar"):
        text += f" ({config.total_steps / PAPER_STEPS:.1%} of the paper's 5M)"
    return text


def _label(sparsity: float) -> str:
    return "dense (sparsity 0)" if sparsity == 0 else f"sparsity {sparsity:g}"


def plot_curves(results: dict[str, Any], config: Any, path: Path) -> Path:
    """Writes the mean episodic return against steps, one line and 95% band per sparsity."""
    curve = per_chunk_returns(results)
    steps = results["steps"]
    fig, ax = plt.subplots(figsize=(7.5, 4.5), dpi=120)
    for i, sparsity in enumerate(config.sparsities):
        mean, low, high = bootstrap_ci(curve[i])
        (line,) = ax.plot(steps, mean, label=_label(sparsity), lw=1.8)
        ax.fill_between(steps, low, high, color=line.get_color(), alpha=0.2, lw=0)
    ax.set_xlabel("environment steps per agent")
    ax.set_ylabel("episodic return (mean of episodes per chunk)")
    ax.set_title(
        f"Stream Q(λ) on {config.env_name}, {horizon(config)}\n"
        f"mean over {config.num_seeds} seeds, 95% bootstrap interval",
        fontsize=10,
    )
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    ax.ticklabel_format(axis="x", style="sci", scilimits=(0, 4))
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _ci(value: float, low: float, high: float) -> str:
    return f"{value:.1f} [{low:.1f}, {high:.1f}]"


def compare(results: dict[str, Any], config: Any) -> list[dict[str, Any]]:
    """Per sparsity: the statistics of the table and the differences to the dense baseline."""
    final = final_returns(results, config.final_fraction)
    # The mean of the learning curve over chunks: an area under the curve, weighted by steps
    # rather than by episodes (early, short episodes would otherwise dominate it).
    area = per_chunk_returns(results).mean(axis=-1)
    dense = config.sparsities.index(0.0) if 0.0 in config.sparsities else None
    rows = []
    for i, sparsity in enumerate(config.sparsities):
        row: dict[str, Any] = {
            "sparsity": sparsity,
            "zeros": float(np.mean(results["init_zero_fraction"][i])),
            "dead": float(np.mean(results["dead_input_neurons"][i])),
            "min": float(np.min(final[i])),
            "max": float(np.max(final[i])),
        }
        for metric, values in [("final", final), ("area", area)]:
            for name, stat in STATISTICS.items():
                row[f"{metric} {name}"] = tuple(map(float, bootstrap_ci(values[i], stat)))
                if dense is not None and i != dense:
                    row[f"{metric} {name} diff"] = bootstrap_difference(
                        values[i], values[dense], stat
                    )
        rows.append(row)
    return rows


def _verdict(diff: tuple[float, float, float]) -> str:
    value, low, high = diff
    if low > 0:
        return f"higher by {value:.1f} [{low:.1f}, {high:.1f}]"
    if high < 0:
        return f"lower by {-value:.1f} [{-high:.1f}, {-low:.1f}]"
    return f"not distinguishable: {value:+.1f} [{low:+.1f}, {high:+.1f}]"


def write_table(
    results: dict[str, Any], config: Any, path: Path, *, seconds: float | None = None
) -> Path:
    """Writes the markdown table of final returns and learning-curve areas per sparsity.

    ``seconds`` is the wall time to report; by default the sweep's own measurement.
    """
    rows = compare(results, config)
    last = max(1, math.ceil(config.final_fraction * config.num_chunks))
    a = config.agent
    t = dict(results["timing"])
    if seconds is not None or "wall_s" not in t:
        t["wall_s"] = seconds if seconds is not None else t["init_s"] + t["compile_s"] + t["run_s"]
    net = (f"conv {list(a.conv)} 3x3 valid, " if a.conv else "") + f"dense {list(a.hidden)}"
    lines = [
        f"# Stream Q(λ) on {config.env_name}: returns by initial sparsity",
        "",
        f"{config.num_seeds} seeds per sparsity, {horizon(config)}, network {net}. "
        f"Final return = mean return of the episodes that ended in the last "
        f"{last * config.chunk_steps:,} steps; area = mean of the learning curve over the "
        f"whole run. Brackets: 95% bootstrap percentile interval over seeds. IQM: interquartile "
        f"mean over seeds.",
        "",
        "| initial sparsity | zeros in kernels at init | first-layer neurons with no input | "
        "final return, mean | final return, IQM | area, mean | area, IQM | min / max seed final |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['sparsity']:g} | {r['zeros']:.3f} | {r['dead']:.0%} | "
            f"{_ci(*r['final mean'])} | {_ci(*r['final IQM'])} | "
            f"{_ci(*r['area mean'])} | {_ci(*r['area IQM'])} | {r['min']:.1f} / {r['max']:.1f} |"
        )
    diffs = [r for r in rows if "final mean diff" in r]
    if diffs:
        lines += ["", "Against the dense baseline (difference, 95% bootstrap interval):", ""]
        for r in diffs:
            for key in ("final mean", "final IQM", "area mean", "area IQM"):
                lines.append(f"- sparsity {r['sparsity']:g}, {key}: {_verdict(r[key + ' diff'])}")
    lines += [
        "",
        f"Wall time {t['wall_s']:.0f} s: building the agents {t['init_s']:.0f} s and compiling "
        f"the chunk {t['compile_s']:.0f} s, then {t['run_s']:.0f} s of steps at "
        f"{t['agent_steps_per_s']:,.0f} agent-steps/s on {t['devices']} {t['platform']} "
        f"device(s).",
    ]
    path.write_text("\n".join(lines) + "\n")
    return path
