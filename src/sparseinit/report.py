"""A readable report of a model's sparsity: per kernel, zeros per neuron and non-zero counts.

Works on any pytree of arrays: a Flax ``params`` dict, an ``nnx.State``, an Equinox module.
Importing it imports neither Flax nor Equinox.
"""

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

__all__ = ["KernelStats", "SparsityReport", "sparsity_report"]


@dataclasses.dataclass(frozen=True)
class KernelStats:
    """The sparsity of one parameter.

    Attributes:
        path: where the parameter is in the tree, as ``layer/kernel``.
        shape: its shape.
        zeros_min: the fewest zeros of any neuron (``None`` for a parameter of fewer than
            ``min_ndim`` dimensions, which has no neurons in this sense).
        zeros_max: the most zeros of any neuron (``None`` likewise).
        size: the number of weights.
        nonzero: the number of non-zero weights.
    """

    path: str
    shape: tuple[int, ...]
    zeros_min: int | None
    zeros_max: int | None
    size: int
    nonzero: int

    @property
    def sparsity(self) -> float:
        """The fraction of weights that are zero."""
        return 1.0 - self.nonzero / self.size if self.size else 0.0


@dataclasses.dataclass(frozen=True)
class SparsityReport:
    """The sparsity of every parameter of a tree; ``str()`` gives a table.

    Attributes:
        rows: one :class:`KernelStats` per array in the tree, in tree order.
    """

    rows: tuple[KernelStats, ...]

    @property
    def size(self) -> int:
        """Weights in the tree."""
        return sum(r.size for r in self.rows)

    @property
    def nonzero(self) -> int:
        """Non-zero weights in the tree."""
        return sum(r.nonzero for r in self.rows)

    @property
    def sparsity(self) -> float:
        """The fraction of all weights that are zero."""
        return 1.0 - self.nonzero / self.size if self.size else 0.0

    def __getitem__(self, path: str) -> KernelStats:
        """The row of the parameter at ``path``."""
        for row in self.rows:
            if row.path == path:
                return row
        raise KeyError(path)

    def __str__(self) -> str:
        header = ("parameter", "shape", "zeros/neuron", "sparsity", "non-zero")
        lines: list[tuple[str, ...]] = [header]
        for r in self.rows:
            if r.zeros_min is None:
                per_neuron = "-"
            elif r.zeros_min == r.zeros_max:
                per_neuron = str(r.zeros_min)
            else:
                per_neuron = f"{r.zeros_min}..{r.zeros_max}"
            lines.append((r.path, str(r.shape), per_neuron, f"{r.sparsity:.1%}", f"{r.nonzero:,}"))
        lines.append(("total", "", "", f"{self.sparsity:.1%}", f"{self.nonzero:,} / {self.size:,}"))
        widths = [max(len(line[i]) for line in lines) for i in range(len(header))]

        def fmt(line: tuple[str, ...]) -> str:
            left = [line[0].ljust(widths[0]), line[1].ljust(widths[1])]
            right = [line[i].rjust(widths[i]) for i in range(2, len(header))]
            return "  ".join(left + right).rstrip()

        rule = "  ".join("-" * w for w in widths)
        return "\n".join([fmt(lines[0]), rule, *map(fmt, lines[1:-1]), rule, fmt(lines[-1])])


def _path(keys: Any) -> str:
    text = jax.tree_util.keystr(keys, simple=True, separator="/")
    # An nnx.State leaf sits under its Variable's "value" field: the variable is the name.
    return text.removesuffix("/value")


def sparsity_report(
    tree: Any,
    *,
    out_axis: int | Callable[[str, tuple[int, ...]], int] = -1,
    min_ndim: int = 2,
) -> SparsityReport:
    """Reports, for every array of ``tree``, its shape, zeros per neuron and non-zero count.

    A neuron is one index along ``out_axis``; its zeros are counted over every other axis,
    as the initializers count them. Flax keeps kernels as ``(..., in, out)`` (the default
    ``out_axis=-1``); Equinox and PyTorch keep ``(out, in, ...)``, so pass ``out_axis=0``.
    Arrays with fewer than ``min_ndim`` dimensions (biases, norms' scales) are counted in
    the totals, without a per-neuron count.

    Args:
        tree: a pytree whose leaves include arrays; other leaves are skipped.
        out_axis: the neuron axis of every kernel, or a function ``(path, shape) -> axis``.
        min_ndim: the fewest dimensions of an array that has neurons.

    Returns:
        A :class:`SparsityReport`; ``print`` it for a table, or read its ``rows``.

    Examples:
        >>> import jax, jax.numpy as jnp, sparseinit
        >>> from sparseinit.report import sparsity_report
        >>> params = {"dense": {"kernel": sparseinit.sparse(0.9)(jax.random.key(0), (100, 8)),
        ...                     "bias": jnp.zeros(8)}}
        >>> report = sparsity_report(params)
        >>> print(report)
        parameter     shape     zeros/neuron  sparsity  non-zero
        ------------  --------  ------------  --------  --------
        dense/bias    (8,)                 -    100.0%         0
        dense/kernel  (100, 8)            90     90.0%        80
        ------------  --------  ------------  --------  --------
        total                                    90.1%  80 / 808
        >>> report["dense/kernel"].zeros_min, report.nonzero
        (90, 80)
    """
    rows = []
    for keys, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        if not isinstance(leaf, jax.Array | np.ndarray):
            continue
        path = _path(keys)
        shape = tuple(int(d) for d in leaf.shape)
        nonzero_mask = np.asarray(leaf) != 0
        size = math.prod(shape)
        zeros_min = zeros_max = None
        if len(shape) >= min_ndim and size:
            axis = out_axis(path, shape) if callable(out_axis) else out_axis
            if not -len(shape) <= axis < len(shape):
                raise ValueError(
                    f"sparsity_report: out_axis must be an axis of {path} with shape {shape}, "
                    f"got {axis}"
                )
            zeros = np.moveaxis(~nonzero_mask, axis, 0).reshape(shape[axis], -1).sum(axis=1)
            zeros_min, zeros_max = int(zeros.min()), int(zeros.max())
        rows.append(KernelStats(path, shape, zeros_min, zeros_max, size, int(nonzero_mask.sum())))
    return SparsityReport(tuple(rows))
