"""A readable report of a model's sparsity: zeros per neuron, dead neurons, cut-off inputs.

Works on any pytree of arrays: a Flax ``params`` dict, an ``nnx.State``, an Equinox module.
Neurons are counted by the initializers' own layout code (``sparseinit._layout.Layout``), so a
neuron here is a neuron there. Importing this module imports neither Flax nor Equinox.
"""

import dataclasses
import math
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeAlias

import jax
import jax.numpy as jnp
import numpy as np

from sparseinit._checks import check_report_axes, check_report_layout
from sparseinit._layout import Layout

__all__ = ["KernelStats", "SparsityReport", "sparsity_report"]

#: Axes of a kernel: one axis, several, or a function ``(path, shape) -> axes`` per parameter.
AxesArg: TypeAlias = int | Sequence[int] | Callable[[str, tuple[int, ...]], Any]


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
        neurons: the number of neurons (``None`` for a parameter without neurons).
        dead: the number of neurons with no non-zero weight (``None`` likewise): whatever
            their inputs, they output only their bias.
        inputs: the number of inputs: fan-in positions (an index over the axes that are
            neither output nor batch axes), one set per batch index (``None`` likewise).
        cut_inputs: the number of inputs with no non-zero weight to any neuron (``None``
            likewise): nothing they carry reaches this kernel's outputs.
    """

    path: str
    shape: tuple[int, ...]
    zeros_min: int | None
    zeros_max: int | None
    size: int
    nonzero: int
    neurons: int | None = None
    dead: int | None = None
    inputs: int | None = None
    cut_inputs: int | None = None

    @property
    def is_kernel(self) -> bool:
        """Whether the parameter has neurons (enough dimensions and at least one weight)."""
        return self.zeros_min is not None

    @property
    def sparsity(self) -> float:
        """The fraction of weights that are zero."""
        return 1.0 - self.nonzero / self.size if self.size else 0.0


def _table(
    header: tuple[str, ...], lines: list[tuple[str, ...]], total: tuple[str, ...] | None
) -> list[str]:
    rows = [header, *lines, *([total] if total else [])]
    widths = [max(len(line[i]) for line in rows) for i in range(len(header))]

    def fmt(line: tuple[str, ...]) -> str:
        left = [line[0].ljust(widths[0]), line[1].ljust(widths[1])]
        right = [line[i].rjust(widths[i]) for i in range(2, len(header))]
        return "  ".join(left + right).rstrip()

    rule = "  ".join("-" * w for w in widths)
    out = [fmt(header), rule, *map(fmt, lines)]
    return [*out, rule, fmt(total)] if total else out


@dataclasses.dataclass(frozen=True)
class SparsityReport:
    """The sparsity of every parameter of a tree; ``str()`` gives a table.

    Kernels (parameters with neurons) and the other parameters (biases, norms' scales) are
    reported apart: a zero bias is not a sparse kernel, and the totals are the kernels'.

    Attributes:
        rows: one :class:`KernelStats` per array in the tree, in tree order.
        neuron_axes: which axes were taken as each kernel's neuron axes, in words; the table
            says it, since a wrong axis gives wrong counts.
    """

    rows: tuple[KernelStats, ...]
    neuron_axes: str = ""

    @property
    def kernels(self) -> tuple[KernelStats, ...]:
        """The rows of parameters with neurons."""
        return tuple(r for r in self.rows if r.is_kernel)

    @property
    def others(self) -> tuple[KernelStats, ...]:
        """The rows of the other parameters: biases, scales, anything with too few dimensions."""
        return tuple(r for r in self.rows if not r.is_kernel)

    @property
    def size(self) -> int:
        """Weights in the kernels."""
        return sum(r.size for r in self.kernels)

    @property
    def nonzero(self) -> int:
        """Non-zero weights in the kernels."""
        return sum(r.nonzero for r in self.kernels)

    @property
    def sparsity(self) -> float:
        """The fraction of the kernels' weights that are zero."""
        return 1.0 - self.nonzero / self.size if self.size else 0.0

    @property
    def dead(self) -> int:
        """Neurons with no non-zero weight, over all kernels."""
        return sum(r.dead or 0 for r in self.kernels)

    @property
    def cut_inputs(self) -> int:
        """Inputs with no non-zero weight to any neuron, over all kernels."""
        return sum(r.cut_inputs or 0 for r in self.kernels)

    def __getitem__(self, path: str) -> KernelStats:
        """The row of the parameter at ``path``."""
        for row in self.rows:
            if row.path == path:
                return row
        raise KeyError(path)

    def __str__(self) -> str:
        out = [f"kernels ({self.neuron_axes})"] if self.neuron_axes else ["kernels"]
        header = ("parameter", "shape", "zeros/neuron", "dead", "cut inputs", "sparsity")
        header += ("non-zero",)
        lines = []
        for r in self.kernels:
            if r.zeros_min == r.zeros_max:
                per_neuron = str(r.zeros_min)
            else:
                per_neuron = f"{r.zeros_min}..{r.zeros_max}"
            dead = _flagged(r.dead or 0, r.neurons or 0)
            cut = _flagged(r.cut_inputs or 0, r.inputs or 0)
            lines.append(
                (r.path, str(r.shape), per_neuron, dead, cut, f"{r.sparsity:.1%}", f"{r.nonzero:,}")
            )
        neurons = sum(r.neurons or 0 for r in self.kernels)
        inputs = sum(r.inputs or 0 for r in self.kernels)
        dead_total = _flagged(self.dead, neurons)
        cut_total = _flagged(self.cut_inputs, inputs)
        total = ("total", "", "", dead_total, cut_total, f"{self.sparsity:.1%}")
        total += (f"{self.nonzero:,} / {self.size:,}",)
        out += _table(header, lines, total)
        if self.dead:
            count = sum(1 for r in self.kernels if r.dead)
            kernels = "kernel has" if count == 1 else "kernels have"
            out.append(
                f"! {count} {kernels} dead neurons (no non-zero weight: they output only their "
                "bias);\n  sparse(..., min_kept=1) keeps at least one weight per neuron"
            )
        if self.cut_inputs:
            count = sum(1 for r in self.kernels if r.cut_inputs)
            kernels = "kernel has" if count == 1 else "kernels have"
            out.append(
                f"! {count} {kernels} inputs that feed no neuron: they stay cut off if the "
                "support is held\n  fixed (keep_sparsity, CondensedLinear); fine when zeros may "
                "move"
            )
        if self.others:
            other_lines = [
                (r.path, str(r.shape), f"{r.sparsity:.1%}", f"{r.nonzero:,} / {r.size:,}")
                for r in self.others
            ]
            out += ["", "other parameters (not in the total)"]
            out += _table(("parameter", "shape", "sparsity", "non-zero"), other_lines, None)
        return "\n".join(out)


def _flagged(count: int, of: int) -> str:
    return f"{count}/{of} !" if count else "0"


def _path(keys: Any) -> str:
    text = jax.tree_util.keystr(keys, simple=True, separator="/")
    # An nnx.State leaf sits under its Variable's "value" field: the variable is the name.
    return text.removesuffix("/value")


def _per_parameter(arg: AxesArg, path: str, shape: tuple[int, ...]) -> Any:
    return arg(path, shape) if callable(arg) else arg


def _is_equinox_module(tree: Any) -> bool:
    # Only if Equinox is already imported: a tree from it cannot exist otherwise.
    eqx = sys.modules.get("equinox")
    return eqx is not None and isinstance(tree, eqx.Module)


def _describe_axes(out_axis: Any, batch_axis: Any, source: str) -> str:
    batch = ""
    if batch_axis != ():
        batch = f"batch_axis={'per parameter' if callable(batch_axis) else repr(batch_axis)}"
    if source:
        text = f"neuron axis {out_axis}: {source}"
        return f"{text}; {batch}" if batch else text
    text = "out_axis per parameter" if callable(out_axis) else f"out_axis={out_axis!r}"
    return f"neuron axes: {text}, {batch}" if batch else f"neuron axes: {text}"


def sparsity_report(
    tree: Any,
    *,
    out_axis: AxesArg | None = None,
    batch_axis: AxesArg = (),
    min_ndim: int = 2,
) -> SparsityReport:
    """Reports, for every kernel of ``tree``, its zeros per neuron, dead neurons, cut inputs.

    A neuron is one index along ``out_axis`` and every ``batch_axis``; its zeros are counted
    over every other axis, exactly as the initializers count them (one definition of a neuron
    in the library). With ``out_axis=None`` the layout is found: an Equinox module keeps its
    weights as ``(out, in, ...)`` (axis ``0``); anything else is taken as Flax's
    ``(..., in, out)`` (axis ``-1``), and the table says so. A neuron with no non-zero weight is
    *dead*: it outputs only its bias; the table marks kernels that have any. Arrays with fewer
    than ``min_ndim`` dimensions (biases, norms' scales) are reported apart, outside the totals.

    An *input* is one position of the fan-in axes (a row of a Dense kernel, an ``(h, w, in)``
    position of a conv kernel), counted once per batch index; it is *cut off* when no neuron
    keeps a non-zero weight from it, and the table marks these too. An exact count of zeros per
    neuron does not bound them: a Q head of 128 inputs and 3 actions at sparsity 0.9 keeps 12
    inputs per action, so about ``(1 - 12/128)**3``, 74% of its inputs, feed no action. They
    matter when the support is held fixed (``sparseinit.optax.keep_sparsity``, a
    ``CondensedLinear`` layer): those units then stay cut off for good, most of all before
    small heads. They do not in the published setting, where the zeros are not kept: an
    ordinary optimizer's first update makes the zero weights non-zero and reconnects them.

    Args:
        tree: a pytree whose leaves include arrays; other leaves are skipped.
        out_axis: the neuron axis or axes of every kernel, or a function ``(path, shape) ->
            axes``; ``None`` finds it from the tree (``0`` for Equinox, ``-1`` otherwise).
        batch_axis: axes of stacked kernels (an ensemble, a scanned stack of layers), each
            index a separate set of neurons; or a function ``(path, shape) -> axes``.
        min_ndim: the fewest dimensions of an array that has neurons.

    Returns:
        A :class:`SparsityReport`; ``print`` it for a table, or read its ``rows``.

    Raises:
        ValueError: if an axis is out of range for a kernel, or the output and batch axes
            overlap or leave no fan-in axis.

    Examples:
        >>> import jax, jax.numpy as jnp, sparseinit
        >>> from sparseinit.report import sparsity_report
        >>> key_dense, key_head = jax.random.split(jax.random.key(0))
        >>> params = {"dense": {"kernel": sparseinit.sparse(0.5)(key_dense, (16, 100)),
        ...                     "bias": jnp.zeros(100)},
        ...           "head": {"kernel": sparseinit.sparse(0.9)(key_head, (100, 1))}}
        >>> report = sparsity_report(params)
        >>> print(report)
        kernels (neuron axis -1: Flax's (..., in, out); pass out_axis=0 for (out, in, ...))
        parameter     shape      zeros/neuron  dead  cut inputs  sparsity     non-zero
        ------------  ---------  ------------  ----  ----------  --------  -----------
        dense/kernel  (16, 100)             8     0           0     50.0%          800
        head/kernel   (100, 1)             90     0    90/100 !     90.0%           10
        ------------  ---------  ------------  ----  ----------  --------  -----------
        total                                     0    90/116 !     52.4%  810 / 1,700
        ! 1 kernel has inputs that feed no neuron: they stay cut off if the support is held
          fixed (keep_sparsity, CondensedLinear); fine when zeros may move
        <BLANKLINE>
        other parameters (not in the total)
        parameter   shape   sparsity  non-zero
        ----------  ------  --------  --------
        dense/bias  (100,)    100.0%   0 / 100
        >>> report["dense/kernel"].zeros_min, report.nonzero, report.dead
        (8, 810, 0)
        >>> report["head/kernel"].cut_inputs  # one neuron keeps 10 of its 100 inputs
        90
        >>> tiny = {"kernel": sparseinit.sparse(0.9)(jax.random.key(0), (4, 64))}  # fan-in 4
        >>> sparsity_report(tiny)["kernel"].dead  # ceil(0.9 * 4) = 4 zeros of 4 inputs
        64
    """
    if out_axis is None:
        if _is_equinox_module(tree):
            out_axis, source = 0, "Equinox's (out, in, ...)"
        else:
            out_axis, source = -1, "Flax's (..., in, out); pass out_axis=0 for (out, in, ...)"
    else:
        source = ""
    rows = []
    for keys, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        if not isinstance(leaf, jax.Array | np.ndarray):
            continue
        path = _path(keys)
        shape = tuple(int(d) for d in leaf.shape)
        nonzero_mask = np.asarray(leaf) != 0
        size = math.prod(shape)
        stats = KernelStats(path, shape, None, None, size, int(nonzero_mask.sum()))
        if len(shape) >= min_ndim and size:
            stats = _kernel_stats(stats, nonzero_mask, out_axis, batch_axis)
        rows.append(stats)
    return SparsityReport(tuple(rows), _describe_axes(out_axis, batch_axis, source))


def _kernel_stats(
    stats: KernelStats, nonzero_mask: np.ndarray, out_axis: AxesArg, batch_axis: AxesArg
) -> KernelStats:
    path, shape = stats.path, stats.shape
    outs = check_report_axes("out_axis", _per_parameter(out_axis, path, shape), path, shape)
    batch = check_report_axes("batch_axis", _per_parameter(batch_axis, path, shape), path, shape)
    check_report_layout(path, shape, outs, batch)
    layout = Layout.of(shape, outs, batch)
    view = layout.to_view(jnp.asarray(nonzero_mask))
    kept = np.asarray(view.sum(axis=1 - layout.neuron_dim, dtype=jnp.int32))
    zeros = layout.fan_in - kept
    # An input is one position of the fan-in axes for each batch index: it is fed forward if
    # any neuron of its batch index keeps a weight from it.
    fed = nonzero_mask.any(axis=outs)
    return dataclasses.replace(
        stats,
        zeros_min=int(zeros.min()),
        zeros_max=int(zeros.max()),
        neurons=layout.num_neurons,
        dead=int((kept == 0).sum()),
        inputs=fed.size,
        cut_inputs=int(fed.size - fed.sum()),
    )
