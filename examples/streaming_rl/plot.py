"""The sweep's outputs: a learning-curve figure and a markdown table of final returns.

Intervals are Student-t 95% confidence intervals of the mean over seeds.
"""

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

# Two-sided 97.5% quantiles of Student's t for 1..30 degrees of freedom; the normal value above.
_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip


def t975(dof: int) -> float:
    """The 97.5% quantile of Student's t with ``dof`` degrees of freedom."""
    if dof < 1:
        raise ValueError(f"t975: dof must be at least 1, got {dof}")
    return _T975[dof - 1] if dof <= len(_T975) else 1.960


def mean_ci(x: np.ndarray, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Mean over ``axis`` and the half-width of its 95% t-interval (NaNs ignored)."""
    n = np.sum(~np.isnan(x), axis=axis)
    mean = np.nanmean(x, axis=axis)
    sd = np.nanstd(x, axis=axis, ddof=1)
    half = np.array([t975(int(k) - 1) if k >= 2 else np.nan for k in np.ravel(n)])
    return mean, half.reshape(np.shape(n)) * sd / np.sqrt(np.maximum(n, 1))


def per_chunk_returns(results: dict[str, np.ndarray]) -> np.ndarray:
    """Mean return of the episodes ended in each chunk; carried forward over chunks with none."""
    sums, counts = results["returns_sum"], results["episodes"]
    curve = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    for i in range(1, curve.shape[-1]):
        curve[..., i] = np.where(np.isnan(curve[..., i]), curve[..., i - 1], curve[..., i])
    return curve


def final_returns(results: dict[str, np.ndarray], final_fraction: float) -> np.ndarray:
    """Per agent, the mean return of every episode that ended in the final chunks."""
    num_chunks = results["episodes"].shape[-1]
    last = max(1, math.ceil(final_fraction * num_chunks))
    sums = results["returns_sum"][..., -last:].sum(-1)
    counts = results["episodes"][..., -last:].sum(-1)
    return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def plot_curves(results: dict[str, np.ndarray], config: Any, path: Path) -> Path:
    """Writes mean episodic return against steps, with a 95% band, one line per sparsity."""
    curve = per_chunk_returns(results)
    steps = results["steps"]
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    for i, sparsity in enumerate(config.sparsities):
        mean, half = mean_ci(curve[i], axis=0)
        label = "dense (0.0)" if sparsity == 0 else f"sparsity {sparsity:g}"
        (line,) = ax.plot(steps, mean, label=label, lw=1.8)
        ax.fill_between(steps, mean - half, mean + half, color=line.get_color(), alpha=0.2)
    ax.set_xlabel("environment steps")
    ax.set_ylabel("episodic return")
    ax.set_title(f"Stream Q(λ) on {config.env_name}: mean and 95% CI over {config.num_seeds} seeds")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def write_table(results: dict[str, np.ndarray], config: Any, path: Path, *, seconds: float) -> Path:
    """Writes the markdown table of final and average returns per sparsity."""
    final = final_returns(results, config.final_fraction)
    # The mean of the learning curve over chunks: an area under the curve, weighted by steps
    # rather than by episodes (early, short episodes would otherwise dominate it).
    overall = np.nanmean(per_chunk_returns(results), axis=-1)
    last = max(1, math.ceil(config.final_fraction * config.num_chunks))
    a = config.agent
    lines = [
        f"# Stream Q(λ) on {config.env_name}: final returns by initial sparsity",
        "",
        f"{config.num_seeds} seeds per sparsity, {config.total_steps:,} steps per agent, "
        f"hidden layers {list(a.hidden)}; final return = mean return of the episodes that "
        f"ended in the last {last * config.chunk_steps:,} steps; ± is the half-width of a "
        f"95% Student-t interval over seeds. Wall time of the whole sweep "
        f"(compilation included): {seconds:.0f} s.",
        "",
        "| initial sparsity | zeros in kernels at init | final return | "
        "mean of the learning curve | min / max seed final |",
        "|---:|---:|---:|---:|---:|",
    ]
    for i, sparsity in enumerate(config.sparsities):
        f_mean, f_half = mean_ci(final[i])
        o_mean, o_half = mean_ci(overall[i])
        zero_frac = float(np.mean(results["init_zero_fraction"][i]))
        lines.append(
            f"| {sparsity:g} | {zero_frac:.3f} | {float(f_mean):.1f} ± {float(f_half):.1f} | "
            f"{float(o_mean):.1f} ± {float(o_half):.1f} | "
            f"{np.nanmin(final[i]):.0f} / {np.nanmax(final[i]):.0f} |"
        )
    path.write_text("\n".join(lines) + "\n")
    return path
