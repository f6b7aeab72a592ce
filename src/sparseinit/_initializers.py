"""The four published initializers: final frozen dataclasses and the factories that build them.

Each factory (:func:`sparse`, :func:`sparsify`, :func:`martens`, :func:`torch_sparse`) checks
its hyper-parameters once and returns an initializer whose fields are those parameters. Each
class says what it is in :meth:`~sparseinit.SparseInitializer._recipe`; calling it (shape,
dtype and key checks, counting, building) is :class:`~sparseinit.SparseInitializer`'s work.
"""

import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar, final

import jax

from sparseinit._base import SparseInitializer
from sparseinit._checks import (
    DISTRIBUTIONS,
    check_axis_args,
    check_bool,
    check_choice,
    check_count,
    check_dtype_arg,
    check_positive,
    check_rounding,
    check_unit_interval,
)
from sparseinit._count import ByNonzero, BySparsity
from sparseinit._pipeline import Rank, Recipe
from sparseinit._typing import AxisLike, DTypeLike, ScalarLike
from sparseinit._values import Distribution, FromBase
from sparseinit._wrapped_init import check_base_init


@final
@dataclasses.dataclass(frozen=True, repr=False)
class SparseInit(SparseInitializer):
    """SparseInit (Elsayed, Vasan and Mahmood, 2024). Built by :func:`sparse`."""

    _name: ClassVar[str] = "sparse"
    _always_shown: ClassVar[tuple[str, ...]] = ("sparsity", "distribution", "rounding")

    sparsity: float | jax.Array = 0.9
    distribution: str = "uniform"
    scale: float = 1.0
    rounding: str = "ceil"
    rescale: bool = False
    min_kept: int = 0
    in_axis: AxisLike = -2
    out_axis: AxisLike = -1
    batch_axis: AxisLike = ()
    dtype: Any = None

    def _recipe(self) -> Recipe:
        return Recipe(
            axes=(self.in_axis, self.out_axis, self.batch_axis),
            count=BySparsity(self.sparsity, self.rounding, self.min_kept),
            values=Distribution(self.distribution, self.scale, per_fan_in=True),
            rescale=self.rescale,
            dtype=self.dtype,
        )


def sparse(
    sparsity: ScalarLike = 0.9,
    *,
    distribution: str = "uniform",
    scale: ScalarLike = 1.0,
    rounding: str = "ceil",
    rescale: bool = False,
    min_kept: ScalarLike = 0,
    in_axis: AxisLike = -2,
    out_axis: AxisLike = -1,
    batch_axis: AxisLike = (),
    dtype: DTypeLike = None,
) -> SparseInit:
    r"""SparseInit: ``R(sparsity * fan_in)`` zeros per neuron, the rest from ``U(±1/sqrt(fan_in))``.

    ``R`` is the rounding rule (``ceil`` by default, ``round`` half up, or ``floor``) applied to
    the product read as the decimal you meant (``0.07 * 100`` is 7). Every neuron (an index
    along ``out_axis`` and each ``batch_axis``) gets its zeros at a
    uniformly random subset of its fan-in (all other axes), drawn without replacement and
    independently of every other neuron. The kept weights are drawn from

    * ``"uniform"``: :math:`U(-b, b)`,
    * ``"normal"``: :math:`N(0, b^2)`,
    * ``"truncated_normal"``: a normal truncated at two standard deviations, rescaled to
      standard deviation :math:`b` as ``jax.nn.initializers.variance_scaling`` does,

    with :math:`b = \mathrm{scale} / \sqrt{\mathrm{fan\_in}}`, the published reference's scale.
    (``jax.nn.initializers.lecun_uniform`` is :math:`\sqrt 3` wider: it matches the variance
    :math:`1/\mathrm{fan\_in}`, the reference matches the bound.)

    With the reference's ``ceil``, a high sparsity on a small fan-in zeros whole neurons
    (``sparse(0.9)`` on a ``(4, 64)`` kernel gives every neuron 4 zeros of 4 inputs);
    ``min_kept=1`` keeps one weight per neuron instead.

    Args:
        sparsity: fraction of each neuron's fan-in set to zero, in ``[0, 1]``. May be traced
            (``jit``/``vmap`` over a grid of sparsities compiles once).
        distribution: ``"uniform"``, ``"normal"`` or ``"truncated_normal"``.
        scale: :math:`b \sqrt{\mathrm{fan\_in}}`; a positive number.
        rounding: how ``sparsity * fan_in`` becomes a count: ``"ceil"`` (the reference and
            PyTorch), ``"round"`` (half up) or ``"floor"``.
        rescale: multiply kept weights by :math:`\sqrt{\mathrm{fan\_in} / \mathrm{kept}}`, the
            variance of the effective fan-in.
        min_kept: the fewest weights a neuron keeps: the count of zeros is capped at
            ``fan_in - min(min_kept, fan_in)``. ``0`` (the default) is the reference's rule,
            which zeros a whole neuron when ``R(sparsity * fan_in) == fan_in``.
        in_axis: the input axis or axes (``-2`` for Flax ``Dense`` and ``Conv`` kernels).
        out_axis: the output axis or axes: one neuron per index.
        batch_axis: axes of independent weight matrices (ensembles), each with its own masks.
        dtype: the default dtype; the call's ``dtype`` argument overrides it.

    Returns:
        A :class:`SparseInit` initializer.

    Raises:
        ValueError: if ``sparsity`` is not a number in ``[0, 1]`` (or is a bool or an array),
            ``min_kept`` is not a non-negative integer, or ``distribution``, ``rounding``,
            ``scale`` or an axis is invalid.

    Examples:
        >>> import jax, jax.numpy as jnp, sparseinit
        >>> init = sparseinit.sparse(0.9)
        >>> init
        sparse(sparsity=0.9, distribution='uniform', rounding='ceil')
        >>> w = init(jax.random.key(0), (784, 256))
        >>> w.shape, w.dtype
        ((784, 256), dtype('float32'))
        >>> set((w == 0).sum(axis=0).tolist())  # zeros per output neuron: ceil(0.9 * 784)
        {706}
        >>> bool(jnp.all(jnp.abs(w) < 1 / jnp.sqrt(784.0)))
        True
        >>> bool((init.mask(jax.random.key(0), (784, 256)) == (w != 0)).all())
        True
        >>> small = sparseinit.sparse(0.9)(jax.random.key(0), (4, 64))  # fan-in 4
        >>> set((small != 0).sum(axis=0).tolist())  # ceil(0.9 * 4) = 4: no weight kept
        {0}
        >>> kept = sparseinit.sparse(0.9, min_kept=1)(jax.random.key(0), (4, 64))
        >>> set((kept != 0).sum(axis=0).tolist())
        {1}

    References:
        Elsayed, Vasan and Mahmood, "Streaming Deep Reinforcement Learning Finally Works",
        2024 (arXiv:2410.14606).
    """
    name = "sparse"
    return SparseInit(
        sparsity=check_unit_interval(name, "sparsity", sparsity),
        distribution=check_choice(name, "distribution", distribution, DISTRIBUTIONS),
        scale=check_positive(name, "scale", scale),
        rounding=check_rounding(name, rounding),
        rescale=check_bool(name, "rescale", rescale),
        min_kept=check_count(name, "min_kept", min_kept),
        **check_axis_args(name, in_axis, out_axis, batch_axis),
        dtype=check_dtype_arg(name, dtype),
    )


@final
@dataclasses.dataclass(frozen=True, repr=False)
class Sparsified(SparseInitializer):
    """Any initializer's values under the exact per-neuron mask. Built by :func:`sparsify`."""

    _name: ClassVar[str] = "sparsify"
    _always_shown: ClassVar[tuple[str, ...]] = ("base_init", "sparsity", "rounding")

    base_init: Callable[..., Any]
    sparsity: float | jax.Array = 0.9
    rounding: str = "ceil"
    rescale: bool = False
    min_kept: int = 0
    in_axis: AxisLike = -2
    out_axis: AxisLike = -1
    batch_axis: AxisLike = ()

    def _recipe(self) -> Recipe:
        return Recipe(
            axes=(self.in_axis, self.out_axis, self.batch_axis),
            count=BySparsity(self.sparsity, self.rounding, self.min_kept),
            values=FromBase(self.base_init),
            rescale=self.rescale,
        )


def sparsify(
    base_init: Callable[..., Any],
    sparsity: ScalarLike = 0.9,
    *,
    rounding: str = "ceil",
    rescale: bool = False,
    min_kept: ScalarLike = 0,
    in_axis: AxisLike = -2,
    out_axis: AxisLike = -1,
    batch_axis: AxisLike = (),
) -> Sparsified:
    r"""The exact per-neuron mask of :func:`sparse`, applied to any JAX initializer.

    ``base_init(key, shape, dtype)`` draws the dense values (``jax.nn.initializers.*``,
    Flax's, or your own) from one sub-key; the mask is drawn from another, exactly as
    :func:`sparse` draws it for the same sparsity, rounding, ``min_kept`` and axes. A kept
    value that the base initializer made exactly zero becomes the dtype's smallest normal
    number, so the support is always the mask. Called without a dtype, the result has the
    dtype the base initializer returns by default (it is called as ``base_init(key, shape)``):
    ``sparsify(normal(dtype=jnp.complex64))`` gives complex weights, a bfloat16
    ``lecun_normal`` bfloat16 ones. The base initializer's output is checked without running
    it (``jax.eval_shape``): it must be an array of the requested shape and dtype.

    Args:
        base_init: a JAX initializer, ``base_init(key, shape, dtype) -> Array``: a factory's
            result such as ``jax.nn.initializers.lecun_normal()``, not the factory itself.
        sparsity: fraction of each neuron's fan-in set to zero, in ``[0, 1]``; may be traced.
        rounding: ``"ceil"``, ``"round"`` (half up) or ``"floor"``.
        rescale: multiply kept weights by :math:`\sqrt{\mathrm{fan\_in} / \mathrm{kept}}`.
        min_kept: the fewest weights a neuron keeps, as in :func:`sparse`.
        in_axis: the input axis or axes.
        out_axis: the output axis or axes.
        batch_axis: axes of independent weight matrices.

    Returns:
        A :class:`Sparsified` initializer.

    Raises:
        ValueError: if ``base_init`` is not callable (or is one of jax's initializer factories,
            uncalled), for a bad sparsity, rounding, ``min_kept`` or axis; the call raises if
            ``base_init`` does not return an array of the requested shape and dtype.

    Examples:
        >>> import jax, jax.numpy as jnp, sparseinit
        >>> init = sparseinit.sparsify(jax.nn.initializers.he_normal(), 0.5)
        >>> init  # doctest: +NORMALIZE_WHITESPACE
        sparsify(base_init=variance_scaling(2.0, 'fan_in', 'truncated_normal'),
                 sparsity=0.5, rounding='ceil')
        >>> w = init(jax.random.key(0), (3, 3, 16, 32))  # a Conv kernel: fan-in 3*3*16
        >>> w.shape
        (3, 3, 16, 32)
        >>> set((w == 0).reshape(-1, 32).sum(axis=0).tolist())
        {72}
        >>> half = sparseinit.sparsify(jax.nn.initializers.lecun_normal(dtype=jnp.bfloat16), 0.5)
        >>> half(jax.random.key(0), (8, 4)).dtype  # the base initializer's own dtype
        dtype(bfloat16)
    """
    name = "sparsify"
    return Sparsified(
        base_init=check_base_init(name, base_init),
        sparsity=check_unit_interval(name, "sparsity", sparsity),
        rounding=check_rounding(name, rounding),
        rescale=check_bool(name, "rescale", rescale),
        min_kept=check_count(name, "min_kept", min_kept),
        **check_axis_args(name, in_axis, out_axis, batch_axis),
    )


@final
@dataclasses.dataclass(frozen=True, repr=False)
class Martens(SparseInitializer):
    """Martens (2010) sparse initialization. Built by :func:`martens`."""

    _name: ClassVar[str] = "martens"
    _always_shown: ClassVar[tuple[str, ...]] = ("nonzero", "std")

    nonzero: int = 15
    std: float = 1.0
    in_axis: AxisLike = -2
    out_axis: AxisLike = -1
    batch_axis: AxisLike = ()
    dtype: Any = None

    def _recipe(self) -> Recipe:
        return Recipe(
            axes=(self.in_axis, self.out_axis, self.batch_axis),
            count=ByNonzero(self.nonzero),
            values=Distribution("normal", self.std),
            dtype=self.dtype,
        )


def martens(
    nonzero: ScalarLike = 15,
    *,
    std: ScalarLike = 1.0,
    in_axis: AxisLike = -2,
    out_axis: AxisLike = -1,
    batch_axis: AxisLike = (),
    dtype: DTypeLike = None,
) -> Martens:
    r"""Martens (2010): exactly ``min(nonzero, fan_in)`` non-zero incoming weights per neuron.

    The non-zero weights are :math:`N(0, \mathrm{std}^2)`, at uniformly random positions of
    each neuron's fan-in, independently per neuron. Unlike :func:`sparse`, the number of
    connections does not grow with the fan-in, which is the point of the method: each unit
    starts with a fixed small number of inputs, whatever the layer's width.

    Args:
        nonzero: non-zero incoming weights per neuron; a non-negative integer.
        std: standard deviation of the non-zero weights; positive.
        in_axis: the input axis or axes.
        out_axis: the output axis or axes.
        batch_axis: axes of independent weight matrices.
        dtype: the default dtype.

    Returns:
        A :class:`Martens` initializer.

    Raises:
        ValueError: if ``nonzero`` is not a non-negative integer or ``std`` is not positive.

    Examples:
        >>> import jax, sparseinit
        >>> init = sparseinit.martens(15)
        >>> init
        martens(nonzero=15, std=1.0)
        >>> w = init(jax.random.key(0), (100, 8))
        >>> set((w != 0).sum(axis=0).tolist())
        {15}

    References:
        Martens, "Deep learning via Hessian-free optimization", ICML 2010.
    """
    name = "martens"
    return Martens(
        nonzero=check_count(name, "nonzero", nonzero),
        std=check_positive(name, "std", std),
        **check_axis_args(name, in_axis, out_axis, batch_axis),
        dtype=check_dtype_arg(name, dtype),
    )


@final
@dataclasses.dataclass(frozen=True, repr=False)
class TorchSparse(SparseInitializer):
    """``torch.nn.init.sparse_`` for a Flax kernel. Built by :func:`torch_sparse`."""

    _name: ClassVar[str] = "torch_sparse"
    _always_shown: ClassVar[tuple[str, ...]] = ("sparsity", "std")

    sparsity: float | jax.Array = 0.9
    std: float = 0.01
    dtype: Any = None

    def _recipe(self) -> Recipe:
        return Recipe(
            # PyTorch zeros per column of its (out, in) weight, i.e. per input: on the Flax
            # kernel (in, out) the "neurons" are the rows and the count runs over the outputs.
            axes=(-1, -2, ()),
            count=BySparsity(self.sparsity, "ceil"),
            values=Distribution("normal", self.std),
            dtype=self.dtype,
            rank=Rank(2, "2-dimensional (in, out) like PyTorch's sparse_"),
        )


def torch_sparse(
    sparsity: ScalarLike,
    std: ScalarLike = 0.01,
    *,
    dtype: DTypeLike = None,
) -> TorchSparse:
    r"""``torch.nn.init.sparse_`` semantics for a Flax kernel of shape ``(in, out)``.

    PyTorch's weight is ``(out, in)`` and it zeros ``ceil(sparsity * out)`` entries of each
    *column*, that is, per input, across the outputs. On the Flax kernel, the transpose, that
    is ``ceil(sparsity * out)`` zeros in each row. All weights are :math:`N(0,
    \mathrm{std}^2)`. Unlike PyTorch, the mask comes from the key (PyTorch's ignores a given
    ``generator``), the rows' subsets are drawn independently, and the count follows the
    decimal rule (``0.07 * 100`` gives 7 zeros where PyTorch's binary ``ceil`` gives 8).

    Args:
        sparsity: fraction of each row set to zero, in ``[0, 1]``; may be traced.
        std: standard deviation of the non-zero weights; positive.
        dtype: the default dtype.

    Returns:
        A :class:`TorchSparse` initializer; its call requires a 2-D shape.

    Raises:
        ValueError: for a bad sparsity or std; the call raises for a shape that is not 2-D.

    Examples:
        >>> import jax, sparseinit
        >>> w = sparseinit.torch_sparse(0.3)(jax.random.key(0), (64, 10))  # (in, out)
        >>> set((w == 0).sum(axis=1).tolist())  # per input row: ceil(0.3 * 10)
        {3}
    """
    name = "torch_sparse"
    return TorchSparse(
        sparsity=check_unit_interval(name, "sparsity", sparsity),
        std=check_positive(name, "std", std),
        dtype=check_dtype_arg(name, dtype),
    )
