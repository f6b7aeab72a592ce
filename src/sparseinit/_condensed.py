"""Condensed kernels: the kept weights of an exactly sparse kernel and where they sit.

Every neuron of a sparseinit kernel keeps the same number ``k`` of weights, so the kept weights
fit a dense ``(k, *neurons)`` array, and their positions in the fan-in an integer array of the
same shape. :class:`Condensed` holds the two; :func:`condense` builds one from any kernel and its
support, and ``init.condensed(key, shape)`` from an initializer's own draw (both through
:func:`compact`, which takes the support as given and never looks for zeros in the weights).
"""

import dataclasses
import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Inexact, Shaped

from sparseinit._checks import check_axes, check_shape, is_traced
from sparseinit._layout import Layout
from sparseinit._typing import AxisLike

__all__ = ["Condensed", "compact", "condense"]


def _gather_is_faster(rows: int, k: int, fan_in: int, out: int) -> bool:
    """Whether ``x @ c`` gathers the kept inputs, or rebuilds the dense kernel and multiplies.

    From figures measured on a CPU (2-core Intel Xeon, float32, 1024x1024 and 4096x4096 at
    sparsities 0.9 and 0.99): the gather costs about 0.8 ns per gathered element
    (``rows * k * out``); the dense route about 1 ns per kernel element to rebuild it
    (``fan_in * out``) and 0.02 ns per multiply-add (``rows * fan_in * out``). The gather is
    faster when ``rows * (0.8 k - 0.02 fan_in) < fan_in``: at every batch above a sparsity of
    1 - 1/40, and up to a batch of about ``fan_in / (0.8 k)`` below it. Past ``2**24``
    gathered elements (64 MiB in float32) the route is dense whatever the count: a gather of
    27 million elements took 2.7 ns per element.
    """
    return rows * (40 * k - fan_in) < 50 * fan_in and rows * k * out <= 1 << 24


@functools.partial(
    jax.tree_util.register_dataclass,
    data_fields=["values", "indices"],
    meta_fields=["shape", "neuron_axes"],
)
@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Condensed:
    """An exactly sparse kernel stored as its kept weights and their positions.

    Every neuron (an index along the output and batch axes, numbered row-major over those axes
    in increasing order, as the initializers number them) keeps the same number ``k`` of
    weights. ``values[j, *n]`` is the ``j``-th kept weight of neuron ``n`` and
    ``indices[j, *n]`` its position in the neuron's fan-in: the row-major flat index over the
    fan-in axes (every axis that is not a neuron axis), increasing in ``j``. Both arrays have
    shape ``(k, *neuron dims)``; for a Dense kernel ``(in, out)`` that is ``(k, out)`` and
    ``indices[j, o]`` is the input row of the ``j``-th kept weight of output ``o``.

    A ``Condensed`` is a pytree: ``values`` and ``indices`` are its children, ``shape`` and
    ``neuron_axes`` static. It goes through ``jit``, ``vmap`` and ``grad``;
    ``jax.grad(f, allow_int=True)`` of a function of a ``Condensed`` gives a ``Condensed``
    whose ``values`` hold the gradient (and whose ``indices`` are ``float0`` zeros).

    Attributes:
        values: the kept weights, ``(k, *neuron dims)``.
        indices: their positions in each neuron's fan-in, ``int32``, same shape.
        shape: the dense kernel's shape.
        neuron_axes: the kernel's neuron axes (output and batch), increasing.

    Examples:
        >>> import jax, jax.numpy as jnp, sparseinit
        >>> c = sparseinit.sparse(0.9).condensed(jax.random.key(0), (784, 256))
        >>> c.shape, c.k, c.values.shape, c.indices.dtype  # ceil(0.9 * 784) = 706 zeros
        ((784, 256), 78, (78, 256), dtype('int32'))
        >>> bool(jnp.all(jnp.diff(c.indices, axis=0) > 0))  # increasing in each neuron
        True
        >>> (jnp.ones((32, 784)) @ c).shape
        (32, 256)
        >>> conv = sparseinit.sparse(0.5).condensed(jax.random.key(0), (3, 3, 8, 16))
        >>> conv.values.shape, conv.todense().shape  # fan-in 3*3*8 = 72 keeps 36
        ((36, 16), (3, 3, 8, 16))
    """

    # Any, not arrays: transformations rebuild the pytree with other leaves (float0 gradients
    # of the indices, vmap's in_axes specs).
    values: Any
    indices: Any
    shape: tuple[int, ...]
    neuron_axes: tuple[int, ...]

    def __post_init__(self) -> None:
        # Static fields are hashed by jit: tuples of Python ints, whatever sequence was given.
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))
        object.__setattr__(self, "neuron_axes", tuple(int(a) for a in self.neuron_axes))

    @property
    def layout(self) -> Layout:
        """The kernel's :class:`~sparseinit._layout.Layout`: neuron axes and fan-in axes."""
        return Layout.of(self.shape, self.neuron_axes, ())

    @property
    def fan_axes(self) -> tuple[int, ...]:
        """The fan-in axes: every axis that is not a neuron axis."""
        return self.layout.fan_axes

    @property
    def fan_in(self) -> int:
        """The fan-in of each neuron: the product of the fan-in axes."""
        return self.layout.fan_in

    @property
    def dtype(self) -> np.dtype:
        """The dtype of the kept weights, and of :meth:`todense`."""
        return np.dtype(self.values.dtype)

    @property
    def k(self) -> int:
        """The number of weights each neuron keeps."""
        return int(self.values.shape[0])

    @property
    def num_kept(self) -> int:
        """The number of weights each neuron keeps (:attr:`k`)."""
        return self.k

    @property
    def is_dense_layout(self) -> bool:
        """Whether the kernel is a Dense kernel ``(in, out)``, the layout ``x @ c`` takes."""
        return len(self.shape) == 2 and self.neuron_axes == (1,)

    def __repr__(self) -> str:
        dtype = getattr(self.values, "dtype", None)
        return (
            f"Condensed(shape={self.shape}, k={getattr(self.values, 'shape', (None,))[0]}, "
            f"dtype={dtype}, neuron_axes={self.neuron_axes})"
        )

    def todense(self) -> Shaped[Array, "..."]:
        """The kernel, with zeros where no weight is kept.

        Returns:
            An array of :attr:`shape` and :attr:`dtype`.

        Examples:
            >>> import jax, sparseinit
            >>> init = sparseinit.sparse(0.75, batch_axis=0)
            >>> c = init.condensed(jax.random.key(0), (4, 8, 3))
            >>> c.values.shape, c.todense().shape  # neurons (4, 3), fan-in 8 keeps 2
            ((2, 4, 3), (4, 8, 3))
            >>> bool((c.todense() == init(jax.random.key(0), (4, 8, 3))).all())
            True
        """
        layout = self.layout
        n, fan_in = layout.num_neurons, layout.fan_in
        values = jnp.asarray(self.values).reshape(self.k, n)
        if self.k == 0 or n == 0:
            return jnp.zeros(self.shape, values.dtype)
        rows = jnp.asarray(self.indices).reshape(self.k, n)
        cols = jnp.arange(n, dtype=rows.dtype)
        if layout.neurons_last:
            view = jnp.zeros((fan_in, n), values.dtype).at[rows, cols].set(values)
        else:
            view = jnp.zeros((n, fan_in), values.dtype).at[cols, rows].set(values)
        return layout.from_view(view)

    def to_bcoo(self) -> Any:
        """The kernel as a ``jax.experimental.sparse.BCOO`` of ``k * num_neurons`` entries.

        Returns:
            A ``BCOO`` of :attr:`shape`, its entries in the order of ``values.reshape(-1)``.

        Examples:
            >>> import jax, sparseinit
            >>> c = sparseinit.sparse(0.9).condensed(jax.random.key(0), (100, 16))
            >>> m = c.to_bcoo()
            >>> m.shape, m.nse
            ((100, 16), 160)
            >>> bool((m.todense() == c.todense()).all())
            True
        """
        from jax.experimental import sparse

        layout = self.layout
        n = layout.num_neurons
        fan_dims = tuple(self.shape[a] for a in layout.fan_axes)
        neuron_dims = tuple(self.shape[a] for a in layout.neuron_axes)
        rows = jnp.asarray(self.indices).reshape(-1)
        cols = jnp.tile(jnp.arange(n, dtype=rows.dtype), self.k)
        by_axis = dict(zip(layout.fan_axes, jnp.unravel_index(rows, fan_dims), strict=True))
        by_axis.update(zip(layout.neuron_axes, jnp.unravel_index(cols, neuron_dims), strict=True))
        coords = [by_axis[axis] for axis in range(len(self.shape))]
        indices = jnp.stack(coords, axis=-1).astype(jnp.int32)
        return sparse.BCOO((jnp.asarray(self.values).reshape(-1), indices), shape=self.shape)

    def _check_matmul(self, operation: str) -> None:
        if not self.is_dense_layout:
            raise ValueError(
                f"Condensed: {operation} needs a Dense kernel (in, out) with the neurons on its "
                f"last axis, got shape {self.shape} with neuron axes {self.neuron_axes}; use "
                "c.todense() for other layouts"
            )

    def __rmatmul__(self, x: Shaped[ArrayLike, "..."]) -> Inexact[Array, "..."]:
        """``x @ c``: ``x @ c.todense()`` for ``x`` of shape ``(..., in)``, from the kept weights.

        Raises:
            ValueError: if the kernel is not a Dense kernel or ``x``'s last axis is not ``in``.
        """
        self._check_matmul("x @ c")
        x = jnp.asarray(x)
        fan_in, out = self.shape
        if x.ndim == 0 or x.shape[-1] != fan_in:
            raise ValueError(
                f"Condensed: x @ c needs x of shape (..., {fan_in}) for a kernel of shape "
                f"{self.shape}, got {x.shape}"
            )
        dtype = jnp.result_type(x, self.values)
        x = x.astype(dtype)
        values = jnp.asarray(self.values).astype(dtype)
        rows = math.prod(x.shape[:-1])
        if self.k == 0:
            return jnp.zeros((*x.shape[:-1], out), dtype)
        if not _gather_is_faster(rows, self.k, fan_in, out):
            return x @ self.todense().astype(dtype)
        gathered = x.at[..., jnp.asarray(self.indices)].get(mode="promise_in_bounds")
        return jnp.einsum("...ko,ko->...o", gathered, values)

    def __matmul__(self, y: Shaped[ArrayLike, "..."]) -> Inexact[Array, "..."]:
        """``c @ y``: ``c.todense() @ y`` for ``y`` of shape ``(out,)`` or ``(out, ...)``.

        Raises:
            ValueError: if the kernel is not a Dense kernel or ``y``'s first axis is not ``out``.
        """
        self._check_matmul("c @ y")
        y = jnp.asarray(y)
        fan_in, out = self.shape
        if y.ndim == 0 or y.shape[0] != out:
            raise ValueError(
                f"Condensed: c @ y needs y of shape ({out}, ...) for a kernel of shape "
                f"{self.shape}, got {y.shape}"
            )
        dtype = jnp.result_type(y, self.values)
        values = jnp.asarray(self.values).astype(dtype)
        # Each kept weight (j, o) adds values[j, o] * y[o] to the row indices[j, o].
        terms = values.reshape(*values.shape, *(1,) * (y.ndim - 1)) * y.astype(dtype)[None]
        result = jnp.zeros((fan_in, *y.shape[1:]), dtype)
        return result.at[jnp.asarray(self.indices)].add(terms)

    # NumPy arrays defer ``x @ c`` to :meth:`__rmatmul__` instead of making an object array.
    __array_ufunc__ = None


@functools.partial(jax.jit, static_argnums=(2, 3))
def _compact(weights: jax.Array, support: jax.Array, layout: Layout, kept: int) -> Condensed:
    n = layout.num_neurons
    neuron_dims = tuple(layout.shape[a] for a in layout.neuron_axes)
    if kept == 0 or n == 0:
        values = jnp.zeros((kept, *neuron_dims), weights.dtype)
        return Condensed(
            values, jnp.zeros(values.shape, jnp.int32), layout.shape, layout.neuron_axes
        )
    w = layout.to_view(weights)
    s = layout.to_view(support)
    # The j-th kept weight of neuron c goes to slot j * n + c of the flat (k, n) result: a
    # running count along the fan-in gives j, and one 1-D scatter places every row index (a
    # fraction of the time of a stable argsort of the support, measured at 1024x1024).
    fan_axis = 0 if layout.neurons_last else 1
    position = jnp.cumsum(s, axis=fan_axis, dtype=jnp.int32) - 1
    rows = jax.lax.broadcasted_iota(jnp.int32, s.shape, fan_axis)
    cols = jax.lax.broadcasted_iota(jnp.int32, s.shape, 1 - fan_axis)
    slot = jnp.where(s, position * n + cols, kept * n)
    flat = jnp.zeros(kept * n, jnp.int32).at[slot.reshape(-1)].set(rows.reshape(-1), mode="drop")
    indices = flat.reshape(kept, n)
    if layout.neurons_last:
        values = jnp.take_along_axis(w, indices, axis=0, mode="promise_in_bounds")
    else:
        values = jnp.take_along_axis(w, indices.T, axis=1, mode="promise_in_bounds").T
    shape = (kept, *neuron_dims)
    return Condensed(
        values.reshape(shape), indices.reshape(shape), layout.shape, layout.neuron_axes
    )


def compact(
    weights: Shaped[Array, "..."], support: Bool[Array, "..."], layout: Layout, kept: int
) -> Condensed:
    """The kept weights of ``weights`` at ``support``, ``kept`` per neuron, as a Condensed.

    The support is taken as given: a kept weight that happens to be zero is kept. Every neuron
    of ``support`` must hold exactly ``kept`` ``True`` entries (:func:`condense` checks; the
    initializers draw it so); this function is jitted with ``layout`` and ``kept`` static and
    does not check.

    Args:
        weights: the kernel, of ``layout.shape``.
        support: ``True`` where a weight is kept, of ``layout.shape``.
        layout: which axes are neurons and which fan-in.
        kept: the number of weights every neuron keeps.

    Returns:
        A :class:`Condensed` with ``values`` of ``weights.dtype`` and ``int32`` ``indices``.

    Examples:
        >>> import jax.numpy as jnp
        >>> from sparseinit._condensed import compact
        >>> from sparseinit._layout import Layout
        >>> w = jnp.array([[1.0, 0.0], [2.0, 3.0], [0.0, 4.0]])
        >>> c = compact(w, w != 0, Layout.of((3, 2), (1,), ()), 2)
        >>> c.values.tolist(), c.indices.tolist()
        ([[1.0, 3.0], [2.0, 4.0]], [[0, 1], [1, 2]])
    """
    if kept * layout.num_neurons >= 2**31 or layout.fan_in >= 2**31:
        raise ValueError(
            f"compact: {kept} kept weights per neuron of {layout.num_neurons} neurons are more "
            "than int32 positions can number"
        )
    return _compact(weights, support, layout, kept)


def _neuron_counts(mask: np.ndarray, layout: Layout) -> np.ndarray:
    # Kept weights per neuron, numbered as the 2-D view numbers them.
    order = layout.neuron_axes + layout.fan_axes
    return np.transpose(mask, order).reshape(layout.num_neurons, layout.fan_in).sum(axis=1)


def condense(
    kernel: Shaped[ArrayLike, "..."],
    mask: Shaped[ArrayLike, "..."],
    *,
    in_axis: AxisLike = -2,
    out_axis: AxisLike = -1,
    batch_axis: AxisLike = (),
) -> Condensed:
    """A kernel and its support as a :class:`Condensed`: the weights where ``mask`` is ``True``.

    For a kernel trained under :func:`sparseinit.optax.keep_sparsity`, or any kernel whose
    neurons keep the same number of weights. The mask is the support as given (a kept weight
    that is zero stays kept). The count ``k`` sets the condensed arrays' shape, so it is read
    from ``mask`` on the host: call this eagerly, outside ``jit``.

    Args:
        kernel: the weights, at least two dimensions.
        mask: a boolean array of the kernel's shape, ``True`` where a weight is kept.
        in_axis: the input axis or axes, as for the initializers.
        out_axis: the output axis or axes; every other axis but ``batch_axis`` is fan-in.
        batch_axis: axes of stacked kernels.

    Returns:
        A :class:`Condensed` with ``values`` of the kernel's dtype.

    Raises:
        ValueError: for a mask that is not boolean, traced or not of the kernel's shape, a bad
            shape or axis, or neurons that keep different numbers of weights (naming the first
            neuron whose count differs from neuron 0's).

    Examples:
        >>> import jax, sparseinit
        >>> init = sparseinit.sparse(0.5)
        >>> key = jax.random.key(0)
        >>> w, mask = init(key, (10, 4)), init.mask(key, (10, 4))
        >>> c = sparseinit.condense(w * 2, mask)
        >>> c.values.shape, bool((c.todense() == w * 2).all())
        ((5, 4), True)
    """
    fn = "condense"
    if is_traced(mask):
        raise ValueError(
            f"{fn}: mask must be a concrete array, got a traced value: the number of kept "
            "weights sets the shape of the condensed arrays; call condense outside jit"
        )
    host_mask = np.asarray(mask)
    if host_mask.dtype != np.bool_:
        raise ValueError(f"{fn}: mask must be a boolean array, got dtype {host_mask.dtype}")
    dims = check_shape(fn, np.shape(kernel))
    if host_mask.shape != dims:
        raise ValueError(
            f"{fn}: mask must have the kernel's shape {dims}, got shape {host_mask.shape}"
        )
    _, outs, batch = check_axes(fn, dims, in_axis, out_axis, batch_axis)
    layout = Layout.of(dims, outs, batch)
    counts = _neuron_counts(host_mask, layout)
    kept = int(counts[0]) if counts.size else 0
    differs = np.flatnonzero(counts != kept)
    if differs.size:
        neuron = int(differs[0])
        neuron_dims = tuple(dims[a] for a in layout.neuron_axes)
        index = tuple(int(i) for i in np.unravel_index(neuron, neuron_dims))
        raise ValueError(
            f"{fn}: every neuron must keep the same number of weights, but neuron 0 keeps "
            f"{kept} and neuron {neuron} (index {index} along axes {layout.neuron_axes}) "
            f"keeps {int(counts[neuron])} of its fan-in {layout.fan_in}"
        )
    return compact(jnp.asarray(kernel), jnp.asarray(host_mask), layout, kept)
