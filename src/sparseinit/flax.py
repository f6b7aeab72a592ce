"""Flax helpers: initializers for embedding and transposed kernels, a condensed layer, a report.

Dense and Conv kernels (``(..., in, out)``) take :func:`sparseinit.sparse` and friends as they
are. Two Flax layouts put the neuron elsewhere; the factories here set the axes for them.
:class:`CondensedLinear` (NNX) and :class:`CondensedDense` (Linen) store and train the kept
weights only.
Importing this module imports Flax; ``import sparseinit`` does not.
"""

from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn
from flax import nnx
from flax.nnx.nn import dtypes
from jaxtyping import Array, ArrayLike, Inexact, Shaped

from sparseinit._condensed import Condensed
from sparseinit._initializers import SparseInit, sparse
from sparseinit._typing import ScalarLike
from sparseinit.report import SparsityReport, sparsity_report

__all__ = ["CondensedIndices", "CondensedLinear", "conv_transpose", "embed", "report"]


def embed(sparsity: ScalarLike = 0.9, **options: Any) -> SparseInit:
    """:func:`sparseinit.sparse` for an ``Embed`` table ``(num_embeddings, features)``.

    Each embedding vector (a row) is a neuron: it gets exactly ``R(sparsity * features)``
    zeros among its features, independently of every other row (``in_axis=-1,
    out_axis=-2``). Flax's own default embedding initializer takes the same view of the
    table: ``variance_scaling(1.0, "fan_in", "normal", out_axis=0)``.

    Args:
        sparsity: fraction of each embedding vector set to zero.
        **options: the keyword arguments of :func:`sparseinit.sparse` (``distribution``,
            ``scale``, ``rounding``, ``rescale``, ``min_kept``, ``dtype``, and
            ``batch_axis`` for stacked tables, each with its own masks), but not the axes,
            which the table fixes.

    Returns:
        A :class:`sparseinit.SparseInit` for ``nnx.Embed(..., embedding_init=...)`` or
        ``nn.Embed(..., embedding_init=...)``.

    Raises:
        ValueError: if ``options`` set ``in_axis`` or ``out_axis``, or as
            :func:`sparseinit.sparse` does.

    Examples:
        >>> import jax, sparseinit.flax
        >>> table = sparseinit.flax.embed(0.75)(jax.random.key(0), (1000, 64))
        >>> set((table == 0).sum(axis=1).tolist())  # per embedding vector: 0.75 * 64
        {48}
    """
    fixed = sorted({"in_axis", "out_axis"} & options.keys())
    if fixed:
        raise ValueError(
            f"embed: {fixed[0]}={options[fixed[0]]!r} cannot be set: an embedding table "
            "(num_embeddings, features) has in_axis=-1 and out_axis=-2; use sparseinit.sparse "
            "for other axes"
        )
    return sparse(sparsity, in_axis=-1, out_axis=-2, **options)


def conv_transpose(
    sparsity: ScalarLike = 0.9, *, transpose_kernel: bool = False, **options: Any
) -> SparseInit:
    """:func:`sparseinit.sparse` for a ``ConvTranspose`` kernel.

    Flax's kernel is ``(*window, in, out)``; with ``transpose_kernel=True`` it is
    ``(*window, out, in)``, the forward convolution's kernel, so the output axis is ``-2``.
    Pass the layer's ``transpose_kernel`` here too.

    Args:
        sparsity: fraction of each output unit's fan-in set to zero.
        transpose_kernel: the layer's ``transpose_kernel``.
        **options: the keyword arguments of :func:`sparseinit.sparse` (``distribution``,
            ``scale``, ``rounding``, ``rescale``, ``min_kept``, ``batch_axis``, ``dtype``,
            ``in_axis`` and ``out_axis``). The axes default to the layout's: ``-2`` and
            ``-1``, or ``-1`` and ``-2`` with ``transpose_kernel=True``.

    Returns:
        A :class:`sparseinit.SparseInit`.

    Raises:
        ValueError: if ``in_axis`` or ``out_axis`` is given with ``transpose_kernel=True`` and
            differs from the axis that layout fixes, or as :func:`sparseinit.sparse` does.

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
    for name, axis in layout.items():
        given = options.get(name)
        if transpose_kernel and given is not None and given != axis:
            raise ValueError(
                f"conv_transpose: {name}={given!r} conflicts with transpose_kernel=True, whose "
                f"kernel (*window, out, in) has in_axis=-1 and out_axis=-2; leave {name} out"
            )
        if given is None:
            options[name] = axis
    return sparse(sparsity, **options)


class CondensedIndices(nnx.Variable):
    """The fan-in positions of a :class:`CondensedLinear`'s kept weights.

    A variable of its own type, not an ``nnx.Param``: ``nnx.Optimizer(model, tx,
    wrt=nnx.Param)``, ``nnx.grad`` and ``nnx.state(model, nnx.Param)`` leave it out, so the
    support stays the one the initializer drew.
    """


def _draw_condensed(
    layer: str, kernel_init: Any, key: jax.Array, shape: tuple[int, int], dtype: Any
) -> Condensed:
    """The layer's condensed kernel, drawn by ``kernel_init.condensed``, checked to be Dense."""
    if not callable(getattr(kernel_init, "condensed", None)):
        raise ValueError(
            f"{layer}: kernel_init must be a sparseinit initializer with a condensed method "
            f"(sparse, sparsify or martens), got {kernel_init!r}"
        )
    kernel = kernel_init.condensed(key, shape, dtype)
    if not kernel.is_dense_layout:
        raise ValueError(
            f"{layer}: kernel_init must count its zeros per output (out_axis=-1, no "
            f"batch_axis), got {kernel_init!r}, whose neurons are the axes "
            f"{kernel.neuron_axes} of the {shape} kernel"
        )
    return kernel


class CondensedLinear(nnx.Module):
    """An ``nnx.Linear`` whose kernel is stored condensed: the kept weights are the parameters.

    The kernel ``(in_features, out_features)`` is drawn by ``kernel_init.condensed`` (the same
    weights as ``kernel_init`` draws for ``nnx.Linear``, bit for bit, from the same
    ``rngs``) and kept as a :class:`sparseinit.Condensed`: the ``k`` kept weights of each output
    are ``values``, an ``nnx.Param`` of shape ``(k, out_features)``, and their input rows are
    ``indices``, a :class:`CondensedIndices` (not trained). Parameters, gradients and optimizer
    state are ``k / in_features`` of a dense layer's, and the support cannot change in
    training. The call is ``x @ kernel + bias`` with ``nnx.Linear``'s dtype promotion.

    Args:
        in_features: the number of input features.
        out_features: the number of output features.
        kernel_init: a sparseinit initializer that counts its zeros per output (``sparse``,
            ``sparsify``, ``martens``; ``torch_sparse`` counts per input and is refused).
        use_bias: whether to add a bias.
        bias_init: the bias initializer.
        dtype: the dtype of the computation; ``None`` infers it from the input and parameters.
        param_dtype: the dtype of ``values`` and the bias.
        rngs: the layer's ``nnx.Rngs``: the kernel and the bias each take a ``params`` key,
            as in ``nnx.Linear``.

    Raises:
        ValueError: if ``kernel_init`` has no ``condensed`` method, or does not count its zeros
            per output.

    Examples:
        >>> import jax, jax.numpy as jnp, sparseinit
        >>> from flax import nnx
        >>> from sparseinit.flax import CondensedLinear
        >>> layer = CondensedLinear(784, 256, kernel_init=sparseinit.sparse(0.9), rngs=nnx.Rngs(0))
        >>> layer.values.shape, layer.indices.shape  # ceil(0.9 * 784) = 706 zeros: 78 kept
        ((78, 256), (78, 256))
        >>> jax.tree.map(jnp.shape, nnx.state(layer, nnx.Param))
        State({
          'bias': Param(
            value=(256,)
          ),
          'values': Param(
            value=(78, 256)
          )
        })
        >>> layer(jnp.ones((32, 784))).shape
        (32, 256)
        >>> layer.condensed().todense().shape
        (784, 256)
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        kernel_init: Any = sparse(0.9),  # noqa: B008 (an immutable initializer)
        use_bias: bool = True,
        bias_init: Any = nnx.initializers.zeros_init(),  # noqa: B008
        dtype: Any = None,
        param_dtype: Any = jnp.float32,
        rngs: nnx.Rngs,
    ):
        kernel = _draw_condensed(
            "CondensedLinear", kernel_init, rngs.params(), (in_features, out_features), param_dtype
        )
        self.values = nnx.Param(kernel.values)
        self.indices = CondensedIndices(kernel.indices)
        self.bias: nnx.Param[jax.Array] | None
        if use_bias:
            self.bias = nnx.Param(bias_init(rngs.params(), (out_features,), param_dtype))
        else:
            self.bias = nnx.data(None)
        self.in_features = in_features
        self.out_features = out_features
        self.use_bias = use_bias
        self.dtype = dtype
        self.param_dtype = param_dtype

    def condensed(self) -> Condensed:
        """The layer's kernel: its current ``values`` at its ``indices``.

        Returns:
            A :class:`sparseinit.Condensed` of shape ``(in_features, out_features)``.
        """
        return Condensed(
            self.values[...], self.indices[...], (self.in_features, self.out_features), (1,)
        )

    def __call__(self, x: Shaped[ArrayLike, "..."]) -> Inexact[Array, "..."]:
        """``x @ kernel + bias`` for ``x`` of shape ``(..., in_features)``.

        Args:
            x: the input; its last axis is the layer's ``in_features``.

        Returns:
            An array of shape ``(..., out_features)``.
        """
        bias = self.bias[...] if self.bias is not None else None
        x, values, bias = dtypes.promote_dtype((x, self.values[...], bias), dtype=self.dtype)
        kernel = Condensed(values, self.indices[...], (self.in_features, self.out_features), (1,))
        y = x @ kernel
        if bias is not None:
            y = y + bias
        return y


class CondensedDense(nn.Module):
    """The Linen twin of :class:`CondensedLinear`: an ``nn.Dense`` storing the kept weights only.

    ``params`` holds ``values`` ``(k, features)`` and ``bias``; the indices are in the
    ``"sparsity"`` collection (``indices``), which an optimizer of ``params`` never sees. Pass
    every collection that ``init`` returned to ``apply``. With the same key the kernel is the
    one ``nn.Dense(features, kernel_init=kernel_init)`` draws.

    Attributes:
        features: the number of output features.
        kernel_init: a sparseinit initializer that counts its zeros per output.
        use_bias: whether to add a bias.
        bias_init: the bias initializer.
        dtype: the dtype of the computation; ``None`` infers it from the input and parameters.
        param_dtype: the dtype of ``values`` and the bias.

    Examples:
        >>> import jax, jax.numpy as jnp, sparseinit
        >>> from sparseinit.flax import CondensedDense
        >>> layer = CondensedDense(16, kernel_init=sparseinit.sparse(0.75))
        >>> variables = layer.init(jax.random.key(0), jnp.ones((1, 64)))
        >>> jax.tree.map(jnp.shape, variables)
        {'params': {'bias': (16,), 'values': (16, 16)}, 'sparsity': {'indices': (16, 16)}}
        >>> layer.apply(variables, jnp.ones((8, 64))).shape
        (8, 16)
    """

    features: int
    kernel_init: Any = sparse(0.9)
    use_bias: bool = True
    bias_init: Any = nnx.initializers.zeros_init()
    dtype: Any = None
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: Shaped[ArrayLike, "..."]) -> Inexact[Array, "..."]:
        """``x @ kernel + bias`` for ``x`` of shape ``(..., in_features)``."""
        shape = (int(jnp.shape(x)[-1]), self.features)
        drawn: list[Condensed] = []

        def draw(key: jax.Array | None) -> Condensed:
            # values and indices come from one draw: the key nn.Dense gives its kernel.
            if not drawn:
                if key is None:
                    raise ValueError(
                        "CondensedDense: the 'sparsity' collection (the kernel's indices) is "
                        "missing: pass every collection that init returned to apply"
                    )
                drawn.append(
                    _draw_condensed(
                        "CondensedDense", self.kernel_init, key, shape, self.param_dtype
                    )
                )
            return drawn[0]

        values = self.param("values", lambda key: draw(key).values)
        indices = self.variable("sparsity", "indices", lambda: draw(None).indices).value
        bias = (
            self.param("bias", self.bias_init, (self.features,), self.param_dtype)
            if self.use_bias
            else None
        )
        x, values, bias = dtypes.promote_dtype((x, values, bias), dtype=self.dtype)
        y = x @ Condensed(values, indices, shape, (1,))
        if bias is not None:
            y = y + bias
        return y


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
