"""The machinery every initializer shares: the JAX protocol, ``mask``, ``repr`` and planning.

A concrete initializer is a final frozen dataclass whose fields are its parameters; it says what
it is in one method, :meth:`SparseInitializer._recipe`. Everything else is here: a call checks
the shape, rank, axes, sharding, dtype and key (:mod:`sparseinit._checks`), derives the
layout and the count of zeros from them, and runs the jitted builder (:mod:`sparseinit._build`).
"""

import abc
import dataclasses
import math
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Inexact

from sparseinit._wrapped_init import describe, resolve
from sparseinit._build import build_mask, build_weights
from sparseinit._count import Zeros, count_of
from sparseinit._layout import Layout
from sparseinit._plan import MaskPlan, Plan, Recipe
from sparseinit._values import FromBase
from sparseinit._typing import DTypeLike, KeyLike, OutSharding, ShapeLike
from sparseinit._checks import (
    check_axes,
    check_dtype,
    check_key,
    check_rank,
    check_shape,
    check_sharding,
    is_traced,
)


def plan_mask(
    name: str, recipe: Recipe, shape: ShapeLike, out_sharding: OutSharding
) -> tuple[MaskPlan, jax.Array | None]:
    """The mask plan of a call, and its traced sparsity (``None`` for a concrete count)."""
    dims = check_shape(name, shape)
    if recipe.rank is not None:
        check_rank(name, dims, recipe.rank.ndim, recipe.rank.described)
    _, outs, batch = check_axes(name, dims, *recipe.axes)
    layout = Layout.of(dims, outs, batch)
    sharding = check_sharding(name, out_sharding)
    count, traced = count_of(recipe.count, layout.fan_in)
    return MaskPlan(name, layout, count, sharding), traced


def plan_weights(
    name: str, recipe: Recipe, shape: ShapeLike, dtype: DTypeLike, out_sharding: OutSharding
) -> tuple[Plan, jax.Array | None]:
    """The plan of a call's weights, and its traced sparsity (``None`` for a concrete count)."""
    mask, traced = plan_mask(name, recipe, shape, out_sharding)
    values = recipe.values
    if isinstance(values, FromBase):
        # The base initializer's output decides the dtype when none is given.
        requested = None if dtype is None else check_dtype(name, dtype, allow_complex=True)
        canonical, call = resolve(name, values.init, mask.layout.shape, requested)
        values = FromBase(call)
    else:
        canonical = check_dtype(name, recipe.dtype if dtype is None else dtype)
        values = values.for_fan_in(mask.layout.fan_in)
    return Plan(mask, canonical, values, recipe.rescale), traced


def draw_weights(
    name: str,
    recipe: Recipe,
    key: KeyLike,
    shape: ShapeLike,
    dtype: DTypeLike,
    out_sharding: OutSharding,
) -> jax.Array:
    """The weights of ``recipe`` for one call, every argument checked."""
    plan, traced = plan_weights(name, recipe, shape, dtype, out_sharding)
    typed_key = check_key(name, key)
    if math.prod(plan.mask.layout.shape) == 0:
        return jnp.zeros(plan.mask.layout.shape, plan.dtype)
    return build_weights(plan, typed_key, traced)


def _format(value: Any) -> str:
    if is_traced(value):
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
    _always_shown: ClassVar[tuple[str, ...]] = ()
    """The parameters that ``repr`` shows even at their default values."""

    @abc.abstractmethod
    def _recipe(self) -> Recipe:
        """What the initializer is: axes, count rule, values, rescale, dtype and rank."""

    def _plan(
        self, shape: ShapeLike, dtype: DTypeLike, out_sharding: OutSharding
    ) -> tuple[Plan, jax.Array | None]:
        """The plan of a call's weights, and its traced sparsity: what the builder is given."""
        return plan_weights(self._name, self._recipe(), shape, dtype, out_sharding)

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
        return draw_weights(self._name, self._recipe(), key, shape, dtype, out_sharding)

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
        plan, traced = plan_mask(self._name, self._recipe(), shape, out_sharding)
        typed_key = check_key(self._name, key)
        if math.prod(plan.layout.shape) == 0:
            return jnp.zeros(plan.layout.shape, bool)
        return build_mask(plan, typed_key, traced)

    def condensed(self, key: KeyLike, shape: ShapeLike, dtype: DTypeLike = None) -> Any:
        """The weights of ``self(key, shape, dtype)`` stored condensed: the kept ones only.

        See :class:`sparseinit.Condensed`. ``init.condensed(key, shape, dtype).todense()``
        equals ``init(key, shape, dtype)`` bit for bit; the support is the sampler's own.
        """
        from sparseinit import _condensed

        plan, traced = plan_weights(self._name, self._recipe(), shape, dtype, None)
        if traced is not None or not isinstance(plan.mask.count, Zeros):
            raise ValueError(
                f"{self._name}.condensed: sparsity must be concrete, got a traced value: the "
                "number of kept weights sets the shape of the condensed arrays"
            )
        layout = plan.mask.layout
        weights = self(key, shape, dtype)
        support = self.mask(key, shape)
        return _condensed.compact(weights, support, layout, layout.fan_in - plan.mask.count.zeros)

    def __repr__(self) -> str:
        parts = []
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            shown = field.name in self._always_shown or is_traced(value)
            if shown or value != field.default:
                parts.append(f"{field.name}={_format(value)}")
        return f"{self._name}({', '.join(parts)})"
