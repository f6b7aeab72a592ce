"""The initializers: small immutable objects that follow the JAX initializer protocol.

Each factory (:func:`sparse`, :func:`sparsify`, :func:`martens`, :func:`torch_sparse`) checks
its hyper-parameters once and returns a frozen dataclass. Calling it checks the shape, dtype
and key, derives the fan-in and the count of zeros from them, and runs the jitted builder.
"""

import abc
import dataclasses
import math
from collections.abc import Callable
from typing import Any, ClassVar, cast

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Inexact

from sparseinit import _validation as v
from sparseinit._base_init import describe, resolve, uncalled_factory
from sparseinit._build import Plan, build
from sparseinit._counting import ROUNDINGS, num_zeros
from sparseinit._layout import Layout
from sparseinit._sampling import DISTRIBUTIONS
from sparseinit._sharding import check_sharding
from sparseinit._typing import (
    AxisLike,
    CountLike,
    DTypeLike,
    KeyLike,
    OutSharding,
    RealLike,
    ShapeLike,
    SparsityLike,
)

__all__ = [
    "Martens",
    "SparseInit",
    "SparseInitializer",
    "Sparsified",
    "TorchSparse",
    "martens",
    "sparse",
    "sparsify",
    "torch_sparse",
]


def _format(value: Any) -> str:
    if v.is_traced(value):
        return f"<traced {value.dtype}{list(value.shape)}>"
    if isinstance(value, np.dtype):
        return repr(value.name)
    if callable(value) and not dataclasses.is_dataclass(value):
        return describe(value)
    return repr(value)


@dataclasses.dataclass(frozen=True, repr=False)
class SparseInitializer(abc.ABC):
    """Base of every sparseinit initializer: an exact per-neuron mask over given values.

    Subclasses are frozen dataclasses (hashable, comparable and usable as ``jit`` static
    arguments when their parameters are concrete) and say how many zeros a neuron gets and
    what the kept weights are. Instances are called as ``init(key, shape, dtype=None,
    out_sharding=None)``, like any ``jax.nn.initializers`` initializer, and have
    :meth:`mask`.
    """

    _name: ClassVar[str] = "sparse"
    # Parameters shown in repr even at their default values.
    _always_shown: ClassVar[tuple[str, ...]] = ()

    # ---- what subclasses define ----------------------------------------------------------
    @abc.abstractmethod
    def _axes(self) -> tuple[AxisLike, AxisLike, AxisLike]:
        """``(in_axis, out_axis, batch_axis)`` as given by the user."""

    def _traced_sparsity(self) -> jax.Array | None:
        """The traced sparsity, if any; the count is then computed inside ``jit``."""
        return None

    @abc.abstractmethod
    def _zeros(self, fan_in: int) -> int:
        """Zeros per neuron for a concrete parameterisation."""

    def _rounding(self) -> str:
        return "ceil"

    def _min_kept(self) -> int:
        return 0

    @abc.abstractmethod
    def _values(self, fan_in: int) -> tuple[str | None, float, Callable[..., Any] | None]:
        """``(distribution, scale, base_init)`` of the kept weights."""

    def _default_dtype(self) -> DTypeLike:
        return None

    def _allow_complex(self) -> bool:
        return False

    def _rescale(self) -> bool:
        return False

    def _min_ndim(self) -> int:
        return 2

    def _check_shape(self, shape: tuple[int, ...]) -> None:  # noqa: B027 (optional hook)
        """Extra shape rules of a subclass; none by default."""

    # ---- the protocol --------------------------------------------------------------------
    def _plan(
        self, shape: ShapeLike, dtype: DTypeLike, out_sharding: OutSharding, *, values: bool = True
    ) -> tuple[Plan, jax.Array | None]:
        name = self._name
        dims = v.check_shape(name, shape, min_ndim=self._min_ndim())
        self._check_shape(dims)
        _, outs, batch = v.check_axes(name, dims, *self._axes())
        layout = Layout.of(dims, outs, batch)
        sharding = check_sharding(name, out_sharding)
        traced = self._traced_sparsity()
        fan_in = layout.fan_in
        distribution, scale, base_init = self._values(fan_in)
        if base_init is not None and values:
            # The base initializer's output decides the dtype when none is given.
            canonical, base_init = resolve(name, base_init, dims, dtype)
        else:
            requested = self._default_dtype() if dtype is None else dtype
            canonical = v.check_dtype(name, requested, allow_complex=self._allow_complex())
        plan = Plan(
            name=name,
            layout=layout,
            dtype=canonical,
            zeros=None if traced is not None else self._zeros(fan_in),
            rounding=self._rounding(),
            distribution=distribution,
            scale=scale,
            rescale=self._rescale(),
            base_init=base_init,
            sharding=sharding,
            min_kept=self._min_kept(),
        )
        return plan, traced

    def __call__(
        self,
        key: KeyLike,
        shape: ShapeLike,
        dtype: DTypeLike = None,
        out_sharding: OutSharding = None,
    ) -> Inexact[Array, "..."]:
        """Draws a sparse weight array.

        Args:
            key: a typed (``jax.random.key``) or raw (``jax.random.PRNGKey``) key, unbatched.
            shape: the weight shape, at least two dimensions.
            dtype: a floating dtype; ``None`` takes the initializer's ``dtype`` (for
                :func:`sparsify`, the dtype its base initializer returns) or JAX's default
                float.
            out_sharding: a ``NamedSharding`` (or a ``PartitionSpec`` under a mesh) for the
                result; each device builds only its shard.

        Returns:
            The weights, exactly as sparse per neuron as the initializer says.

        Raises:
            ValueError: for a bad shape, axis, dtype, key or sharding, or (:func:`sparsify`) a
                base initializer that does not return an array of ``shape`` and ``dtype``.
        """
        plan, traced = self._plan(shape, dtype, out_sharding)
        typed_key = v.check_key(self._name, key)
        if math.prod(plan.layout.shape) == 0:
            return jnp.zeros(plan.layout.shape, plan.dtype)
        return build(plan, False, typed_key, traced)

    def mask(
        self, key: KeyLike, shape: ShapeLike, out_sharding: OutSharding = None
    ) -> Bool[Array, "..."]:
        """The support of ``self(key, shape, ...)``: ``True`` where a weight is kept.

        The mask does not depend on the dtype, and ``init.mask(key, shape) == (init(key,
        shape) != 0)`` holds for every dtype: a kept weight is never exactly zero.

        Args:
            key: the key that is (or will be) passed to the initializer.
            shape: the weight shape.
            out_sharding: where to place the mask, as for the call.

        Returns:
            A boolean array of ``shape``.
        """
        plan, traced = self._plan(shape, None, out_sharding, values=False)
        # The mask depends only on the count, the shape and the axes: one compiled program
        # serves every distribution, scale and base initializer.
        plan = dataclasses.replace(
            plan,
            dtype=np.dtype(np.float32),
            distribution=None,
            scale=1.0,
            rescale=False,
            base_init=None,
        )
        typed_key = v.check_key(self._name, key)
        if math.prod(plan.layout.shape) == 0:
            return jnp.zeros(plan.layout.shape, bool)
        return build(plan, True, typed_key, traced)

    def __repr__(self) -> str:
        parts = []
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            shown = field.name in self._always_shown or v.is_traced(value)
            if shown or value != field.default:
                parts.append(f"{field.name}={_format(value)}")
        return f"{self._name}({', '.join(parts)})"


def _axis_args(name: str, in_axis: Any, out_axis: Any, batch_axis: Any) -> dict[str, Any]:
    return {
        "in_axis": v.check_axis_arg(name, "in_axis", in_axis),
        "out_axis": v.check_axis_arg(name, "out_axis", out_axis),
        "batch_axis": v.check_axis_arg(name, "batch_axis", batch_axis),
    }


class _AxesMixin:
    """Shared by the initializers whose axes are user parameters."""

    in_axis: AxisLike
    out_axis: AxisLike
    batch_axis: AxisLike

    def _axes(self) -> tuple[AxisLike, AxisLike, AxisLike]:
        return self.in_axis, self.out_axis, self.batch_axis


def _check_rounding(name: str, rounding: Any) -> str:
    return v.check_choice(name, "rounding", rounding, ROUNDINGS)


def _check_dtype_arg(name: str, dtype: DTypeLike, allow_complex: bool = False) -> DTypeLike:
    if dtype is None:
        return None
    return np.dtype(v.check_dtype(name, dtype, allow_complex=allow_complex)).name


class _SparsityMixin:
    """Shared by the initializers whose count is ``R(sparsity * fan_in)``."""

    sparsity: float | jax.Array

    def _traced_sparsity(self) -> jax.Array | None:
        return cast(jax.Array, self.sparsity) if v.is_traced(self.sparsity) else None

    def _zeros(self, fan_in: int) -> int:
        return num_zeros(float(self.sparsity), fan_in, self._rounding(), min_kept=self._min_kept())

    def _rounding(self) -> str:
        return "ceil"

    def _min_kept(self) -> int:
        return 0


@dataclasses.dataclass(frozen=True, repr=False)
class SparseInit(_SparsityMixin, _AxesMixin, SparseInitializer):
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

    def _rounding(self) -> str:
        return self.rounding

    def _min_kept(self) -> int:
        return self.min_kept

    def _values(self, fan_in: int) -> tuple[str | None, float, Callable[..., Any] | None]:
        return self.distribution, self.scale / math.sqrt(max(fan_in, 1)), None

    def _rescale(self) -> bool:
        return self.rescale

    def _default_dtype(self) -> DTypeLike:
        return self.dtype


def sparse(
    sparsity: SparsityLike = 0.9,
    *,
    distribution: str = "uniform",
    scale: RealLike = 1.0,
    rounding: str = "ceil",
    rescale: bool = False,
    min_kept: CountLike = 0,
    in_axis: AxisLike = -2,
    out_axis: AxisLike = -1,
    batch_axis: AxisLike = (),
    dtype: DTypeLike = None,
) -> SparseInit:
    r"""SparseInit: exactly ``R(sparsity * fan_in)`` zeros per neuron, the rest at LeCun scale.

    Every neuron (an index along ``out_axis`` and each ``batch_axis``) gets its zeros at a
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
        sparsity=v.check_unit_interval(name, "sparsity", sparsity),
        distribution=v.check_choice(name, "distribution", distribution, DISTRIBUTIONS),
        scale=v.check_positive(name, "scale", scale),
        rounding=_check_rounding(name, rounding),
        rescale=_check_bool(name, "rescale", rescale),
        min_kept=v.check_count(name, "min_kept", min_kept),
        **_axis_args(name, in_axis, out_axis, batch_axis),
        dtype=_check_dtype_arg(name, dtype),
    )


def _check_bool(name: str, argname: str, value: Any) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise ValueError(f"{name}: {argname} must be True or False, got {value!r}")
    return bool(value)


@dataclasses.dataclass(frozen=True, repr=False)
class Sparsified(_SparsityMixin, _AxesMixin, SparseInitializer):
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

    def _rounding(self) -> str:
        return self.rounding

    def _min_kept(self) -> int:
        return self.min_kept

    def _values(self, fan_in: int) -> tuple[str | None, float, Callable[..., Any] | None]:
        return None, 1.0, self.base_init

    def _rescale(self) -> bool:
        return self.rescale

    def _allow_complex(self) -> bool:
        return True


def sparsify(
    base_init: Callable[..., Any],
    sparsity: SparsityLike = 0.9,
    *,
    rounding: str = "ceil",
    rescale: bool = False,
    min_kept: CountLike = 0,
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
    if not callable(base_init):
        raise ValueError(f"{name}: base_init must be a callable initializer, got {base_init!r}")
    factory = uncalled_factory(base_init)
    if factory is not None:
        raise ValueError(
            f"{name}: base_init must be an initializer, got the initializer factory "
            f"{describe(base_init)} itself; did you mean {factory}()?"
        )
    return Sparsified(
        base_init=base_init,
        sparsity=v.check_unit_interval(name, "sparsity", sparsity),
        rounding=_check_rounding(name, rounding),
        rescale=_check_bool(name, "rescale", rescale),
        min_kept=v.check_count(name, "min_kept", min_kept),
        **_axis_args(name, in_axis, out_axis, batch_axis),
    )


@dataclasses.dataclass(frozen=True, repr=False)
class Martens(_AxesMixin, SparseInitializer):
    """Martens (2010) sparse initialization. Built by :func:`martens`."""

    _name: ClassVar[str] = "martens"
    _always_shown: ClassVar[tuple[str, ...]] = ("nonzero", "std")

    nonzero: int = 15
    std: float = 1.0
    in_axis: AxisLike = -2
    out_axis: AxisLike = -1
    batch_axis: AxisLike = ()
    dtype: Any = None

    def _zeros(self, fan_in: int) -> int:
        return fan_in - min(self.nonzero, fan_in)

    def _values(self, fan_in: int) -> tuple[str | None, float, Callable[..., Any] | None]:
        return "normal", self.std, None

    def _default_dtype(self) -> DTypeLike:
        return self.dtype


def martens(
    nonzero: CountLike = 15,
    *,
    std: RealLike = 1.0,
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
        nonzero=v.check_count(name, "nonzero", nonzero),
        std=v.check_positive(name, "std", std),
        **_axis_args(name, in_axis, out_axis, batch_axis),
        dtype=_check_dtype_arg(name, dtype),
    )


@dataclasses.dataclass(frozen=True, repr=False)
class TorchSparse(_SparsityMixin, SparseInitializer):
    """``torch.nn.init.sparse_`` for a Flax kernel. Built by :func:`torch_sparse`."""

    _name: ClassVar[str] = "torch_sparse"
    _always_shown: ClassVar[tuple[str, ...]] = ("sparsity", "std")

    sparsity: float | jax.Array = 0.9
    std: float = 0.01
    dtype: Any = None

    def _axes(self) -> tuple[AxisLike, AxisLike, AxisLike]:
        # PyTorch zeros per column of its (out, in) weight, i.e. per input: on the Flax
        # kernel (in, out) the "neurons" are the rows and the count runs over the outputs.
        return -1, -2, ()

    def _values(self, fan_in: int) -> tuple[str | None, float, Callable[..., Any] | None]:
        return "normal", self.std, None

    def _default_dtype(self) -> DTypeLike:
        return self.dtype

    def _check_shape(self, shape: tuple[int, ...]) -> None:
        if len(shape) != 2:
            raise ValueError(
                f"torch_sparse: shape must be 2-dimensional (in, out) like PyTorch's sparse_, "
                f"got {shape}"
            )


def torch_sparse(
    sparsity: SparsityLike,
    std: RealLike = 0.01,
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
        sparsity=v.check_unit_interval(name, "sparsity", sparsity),
        std=v.check_positive(name, "std", std),
        dtype=_check_dtype_arg(name, dtype),
    )
