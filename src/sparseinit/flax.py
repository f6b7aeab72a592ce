"""Flax helpers: initializers with the axes of Flax's embedding and transposed kernels, a report.

Dense and Conv kernels (``(..., in, out)``) take :func:`sparseinit.sparse` and friends as they
are. Two Flax layouts put the neuron elsewhere; the factories here set the axes for them.
Importing this module imports Flax; ``import sparseinit`` does not.
"""

from typing import Any

from flax import nnx

from sparseinit._initializers import SparseInit, sparse
from sparseinit._typing import AxisLike, DTypeLike, ScalarLike
from sparseinit.report import SparsityReport, sparsity_report

__all__ = ["conv_transpose", "embed", "report"]


def embed(
    sparsity: ScalarLike = 0.9,
    *,
    distribution: str = "uniform",
    scale: ScalarLike = 1.0,
    rounding: str = "ceil",
    rescale: bool = False,
    min_kept: ScalarLike = 0,
    batch_axis: AxisLike = (),
    dtype: DTypeLike = None,
) -> SparseInit:
    """:func:`sparseinit.sparse` for an ``Embed`` table ``(num_embeddings, features)``.

    Each embedding vector (a row) is a neuron: it gets exactly ``R(sparsity * features)``
    zeros among its features, independently of every other row (``in_axis=-1,
    out_axis=-2``). Flax's own default embedding initializer takes the same view of the
    table: ``variance_scaling(1.0, "fan_in", "normal", out_axis=0)``.

    Args:
        sparsity: fraction of each embedding vector set to zero.
        distribution: as for :func:`sparseinit.sparse`.
        scale: as for :func:`sparseinit.sparse`.
        rounding: as for :func:`sparseinit.sparse`.
        rescale: as for :func:`sparseinit.sparse`.
        min_kept: as for :func:`sparseinit.sparse`.
        batch_axis: axes of stacked tables, each with its own masks.
        dtype: the default dtype.

    Returns:
        A :class:`sparseinit.SparseInit` for ``nnx.Embed(..., embedding_init=...)`` or
        ``nn.Embed(..., embedding_init=...)``.

    Examples:
        >>> import jax, sparseinit.flax
        >>> table = sparseinit.flax.embed(0.75)(jax.random.key(0), (1000, 64))
        >>> set((table == 0).sum(axis=1).tolist())  # per embedding vector: 0.75 * 64
        {48}
    """
    return sparse(
        sparsity,
        distribution=distribution,
        scale=scale,
        rounding=rounding,
        rescale=rescale,
        min_kept=min_kept,
        in_axis=-1,
        out_axis=-2,
        batch_axis=batch_axis,
        dtype=dtype,
    )


def conv_transpose(
    sparsity: ScalarLike = 0.9,
    *,
    transpose_kernel: bool = False,
    distribution: str = "uniform",
    scale: ScalarLike = 1.0,
    rounding: str = "ceil",
    rescale: bool = False,
    min_kept: ScalarLike = 0,
    in_axis: AxisLike | None = None,
    out_axis: AxisLike | None = None,
    batch_axis: AxisLike = (),
    dtype: DTypeLike = None,
) -> SparseInit:
    """:func:`sparseinit.sparse` for a ``ConvTranspose`` kernel.

    Flax's kernel is ``(*window, in, out)``; with ``transpose_kernel=True`` it is
    ``(*window, out, in)``, the forward convolution's kernel, so the output axis is ``-2``.
    Pass the layer's ``transpose_kernel`` here too.

    Args:
        sparsity: fraction of each output unit's fan-in set to zero.
        transpose_kernel: the layer's ``transpose_kernel``.
        distribution: as for :func:`sparseinit.sparse`.
        scale: as for :func:`sparseinit.sparse`.
        rounding: as for :func:`sparseinit.sparse`.
        rescale: as for :func:`sparseinit.sparse`.
        min_kept: as for :func:`sparseinit.sparse`.
        in_axis: the input axis or axes; ``None`` is the layout's (``-2``, or ``-1`` with
            ``transpose_kernel=True``).
        out_axis: the output axis or axes; ``None`` is the layout's (``-1``, or ``-2``).
        batch_axis: axes of stacked kernels, each with its own masks.
        dtype: the default dtype.

    Returns:
        A :class:`sparseinit.SparseInit`.

    Raises:
        ValueError: if ``in_axis`` or ``out_axis`` is given with ``transpose_kernel=True`` and
            differs from the axis that layout fixes.

    Examples:
        >>> import jax, sparseinit.flax
        >>> init = sparseinit.flax.conv_transpose(0.5, transpose_kernel=True)
        >>> w = init(jax.random.key(0), (3, 3, 8, 4))  # (h, w, out=8, in=4)
        >>> set((w == 0).sum(axis=(0, 1, 3)).reshape(-1).tolist())  # 0.5 * 3*3*4
        {18}
    """
    layout = (
        {"in_axis": -1, "out_axis": -2} if transpose_kernel else {"in_axis": -2, "out_axis": -1}
    )
    given = {"in_axis": in_axis, "out_axis": out_axis}
    for name, axis in given.items():
        if transpose_kernel and axis is not None and axis != layout[name]:
            raise ValueError(
                f"conv_transpose: {name}={axis!r} conflicts with transpose_kernel=True, whose "
                f"kernel (*window, out, in) has in_axis=-1 and out_axis=-2; leave {name} out"
            )
    return sparse(
        sparsity,
        distribution=distribution,
        scale=scale,
        rounding=rounding,
        rescale=rescale,
        min_kept=min_kept,
        in_axis=layout["in_axis"] if in_axis is None else in_axis,
        out_axis=layout["out_axis"] if out_axis is None else out_axis,
        batch_axis=batch_axis,
        dtype=dtype,
    )


def report(model: Any, *, out_axis: Any = None, batch_axis: Any = ()) -> SparsityReport:
    """:func:`sparseinit.report.sparsity_report` of an ``nnx.Module``'s parameters.

    Kernels are reported apart from biases, with their dead neurons (no non-zero weight).

    Args:
        model: an ``nnx.Module`` (its ``nnx.Param`` state is reported), or any pytree (a
            Linen ``params`` dict, an ``nnx.State``).
        out_axis: the neuron axis or axes of the kernels; ``None`` is Flax's ``-1``.
        batch_axis: axes of stacked kernels (``nnx.vmap`` ensembles, scanned layers).

    Returns:
        A :class:`sparseinit.report.SparsityReport`.

    Examples:
        >>> import sparseinit, sparseinit.flax
        >>> from flax import nnx
        >>> model = nnx.Linear(100, 8, kernel_init=sparseinit.sparse(0.9), rngs=nnx.Rngs(0))
        >>> sparseinit.flax.report(model)["kernel"].zeros_min
        90
        >>> tiny = nnx.Linear(4, 64, kernel_init=sparseinit.sparse(0.9), rngs=nnx.Rngs(0))
        >>> sparseinit.flax.report(tiny)["kernel"].dead  # ceil(0.9 * 4): all 4 inputs zero
        64
    """
    tree = nnx.state(model, nnx.Param) if isinstance(model, nnx.Module) else model
    return sparsity_report(tree, out_axis=out_axis, batch_axis=batch_axis)
