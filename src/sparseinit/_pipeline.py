"""One call of an initializer, from its arguments to an array: a plan, then a jitted build.

An initializer says what it is in a :class:`Recipe`. A call checks its arguments once and turns
the recipe, with the shape, dtype and sharding it is given, into a :class:`Plan` (:func:`plan`):
the layout of neurons and fan-in, the count of zeros, the values and the placement. Plans are
frozen and hashable: :func:`build` is jitted with the plan static, so an eager call compiles
once per plan and runs the same program as a call inside the user's ``jit``, and eager, jitted
and vmapped results are bit-identical. A plan without values builds the mask, so one compiled
mask serves every distribution, scale and base initializer.

The build takes three keys from the call's key: the start of the mask, the correction's
proposals and the values. The support comes from :mod:`sparseinit._mask`; the values are one
draw over the whole array (:mod:`sparseinit._values`), kept where the support is.
"""

import dataclasses
import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from sparseinit import _random
from sparseinit._checks import (
    check_axes,
    check_dtype,
    check_key,
    check_shape,
    check_sharding,
    check_size,
)
from sparseinit._count import Count, CountRule, count_of, zeros_in_jit
from sparseinit._layout import Layout
from sparseinit._mask import LIMIT, draw_support, orient
from sparseinit._sharding import constrain, fan_in_shards, run_auto, view_sharding
from sparseinit._typing import AxisLike, DTypeLike, KeyLike, OutSharding, ShapeLike
from sparseinit._values import (
    Distribution,
    FromBase,
    Values,
    compute_dtype,
    kept_values,
    masked_base_values,
    rescale_factor,
)
from sparseinit._wrapped_init import empty_dtype, resolve


@dataclasses.dataclass(frozen=True)
class Rank:
    """An exact number of dimensions that a shape must have, and how the message names it."""

    ndim: int
    described: str


@dataclasses.dataclass(frozen=True)
class Recipe:
    """What an initializer is.

    Attributes:
        axes: ``(in_axis, out_axis, batch_axis)`` as stored, normalised per call.
        count: how many zeros a neuron gets.
        values: where the kept weights come from.
        rescale: whether kept weights are scaled by ``sqrt(fan_in / kept)``.
        dtype: the default dtype (``None``: JAX's default float, or for a base initializer the
            dtype it returns).
        rank: an exact rank the shape must have, or ``None`` for any rank of at least two.
    """

    axes: tuple[AxisLike, AxisLike, AxisLike]
    count: CountRule
    values: Values
    rescale: bool = False
    dtype: DTypeLike = None
    rank: Rank | None = None


@dataclasses.dataclass(frozen=True)
class Plan:
    """Everything static about one call: what the jitted build is specialised on.

    Attributes:
        name: the public function's name, for messages.
        layout: neurons and fan-in of the requested shape.
        count: the zeros per neuron, or the static part of a traced sparsity's count.
        sharding: the requested ``out_sharding``.
        dtype: the result's canonical dtype; ``None`` for the mask.
        values: the kept weights at this fan-in's scale, or the base initializer as it is to
            be called; ``None`` for the mask.
        rescale: whether kept weights are scaled by ``sqrt(fan_in / kept)``.
    """

    name: str
    layout: Layout
    count: Count
    sharding: Any
    dtype: np.dtype | None = None
    values: Values | None = None
    rescale: bool = False

    @property
    def is_empty(self) -> bool:
        """Whether the array has no element: there is nothing to draw."""
        return math.prod(self.layout.shape) == 0


def plan(
    name: str,
    recipe: Recipe,
    shape: ShapeLike,
    out_sharding: OutSharding,
    *,
    dtype: DTypeLike = None,
    weights: bool = True,
) -> tuple[Plan, jax.Array | None]:
    """The plan of a call (of its mask, without ``weights``), and its traced sparsity.

    Every argument is checked here, once. A zero-size shape is planned without calling a base
    initializer: there is nothing to draw.
    """
    dims = check_shape(name, shape)
    if recipe.rank is not None and len(dims) != recipe.rank.ndim:
        raise ValueError(f"{name}: shape must be {recipe.rank.described}, got {dims}")
    _, outs, batch = check_axes(name, dims, *recipe.axes)
    layout = Layout.of(dims, outs, batch)
    check_size(name, dims, layout.fan_in, layout.num_neurons, LIMIT)
    sharding = check_sharding(name, out_sharding)
    count, traced = count_of(recipe.count, layout.fan_in)
    mask_plan = Plan(name, layout, count, sharding)
    if not weights:
        return mask_plan, traced
    values = recipe.values
    if isinstance(values, FromBase):
        requested = None if dtype is None else check_dtype(name, dtype, allow_complex=True)
        if mask_plan.is_empty:
            canonical = empty_dtype(values.init, dims, requested)
        else:
            # The base initializer's output decides the dtype when none is given.
            canonical, call = resolve(name, values.init, dims, requested)
            values = FromBase(call)
    else:
        canonical = check_dtype(name, recipe.dtype if dtype is None else dtype)
        values = values.for_fan_in(layout.fan_in)
    return dataclasses.replace(
        mask_plan, dtype=canonical, values=values, rescale=recipe.rescale
    ), traced


def draw_weights(
    name: str,
    recipe: Recipe,
    key: KeyLike,
    shape: ShapeLike,
    dtype: DTypeLike,
    out_sharding: OutSharding,
) -> jax.Array:
    """The weights of ``recipe`` for one call, every argument checked."""
    call_plan, traced = plan(name, recipe, shape, out_sharding, dtype=dtype)
    typed_key = check_key(name, key)
    if call_plan.is_empty:
        return jnp.zeros(call_plan.layout.shape, call_plan.dtype)
    return build(call_plan, typed_key, traced)


def draw_mask(
    name: str, recipe: Recipe, key: KeyLike, shape: ShapeLike, out_sharding: OutSharding
) -> jax.Array:
    """The support of ``recipe``'s weights for one call: ``True`` where a weight is kept."""
    call_plan, traced = plan(name, recipe, shape, out_sharding, weights=False)
    typed_key = check_key(name, key)
    if call_plan.is_empty:
        return jnp.zeros(call_plan.layout.shape, bool)
    return build(call_plan, typed_key, traced)


@functools.partial(jax.jit, static_argnums=(0,))
def build(plan: Plan, key: jax.Array, sparsity: jax.Array | None) -> jax.Array:
    """The weights of ``plan`` drawn with ``key`` (its mask, for a plan without values).

    Args:
        plan: the static description of the call.
        key: a single typed key.
        sparsity: the traced sparsity when the plan's count is traced; otherwise ``None``.

    Returns:
        An array of ``plan.layout.shape``, placed as ``plan.sharding``.
    """
    # Explicit mesh axes refuse the constraints that keep every intermediate sharded.
    return run_auto(plan.sharding, lambda: _draw(plan, key, sparsity))


def _draw(plan: Plan, key: jax.Array, sparsity: jax.Array | None) -> jax.Array:
    # The weights, or without values the mask.
    layout = plan.layout
    start_key, step_key, value_key = _random.split(key, 3)
    zeros, valid = zeros_in_jit(plan.name, plan.count, layout.fan_in, sparsity)
    placement = view_sharding(plan.sharding, layout)
    place = functools.partial(constrain, sharding=placement)
    support = draw_support(
        layout,
        zeros,
        start_key,
        step_key,
        place,
        fan_in_shards=fan_in_shards(placement, layout),
    )

    def finish(result: jax.Array, invalid_fill: bool | float) -> jax.Array:
        # Nothing can raise inside jit: a traced sparsity out of range poisons the result.
        if valid is not None:
            result = jnp.where(valid, result, invalid_fill)
        return constrain(result, plan.sharding)

    if plan.values is None:
        return finish(support, True)
    assert plan.dtype is not None
    factor = None
    if plan.rescale:
        factor = rescale_factor(layout.fan_in, zeros, compute_dtype(plan.dtype))
    if isinstance(plan.values, Distribution):
        scale = 1.0 if factor is None else factor
        draw = kept_values(value_key, plan.values, scale, plan.dtype)
        # Drawn as (fan_in, neurons) in the view's placement, so that no device holds them all.
        drawn = draw((layout.fan_in, layout.num_neurons))
        dense = layout.from_view(place(orient(drawn, layout.neuron_dim)))
        return finish(jnp.where(support, dense, jnp.zeros((), dense.dtype)), jnp.nan)
    place_dense = functools.partial(constrain, sharding=plan.sharding)
    dense = masked_base_values(
        plan.values.init, value_key, support, plan.dtype, factor, place_dense
    )
    return finish(dense, jnp.nan)
