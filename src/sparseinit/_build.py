"""Building one weight array (or its mask) from a static plan: the jitted core of every call.

Each initializer turns its call into a :class:`Plan` (everything static: layout, dtype, counts,
scales) and hands it, with the key and any traced sparsity, to :func:`build`. ``build`` is
jitted with the plan static, so an eager call compiles once per plan and runs the same program
as a call inside the user's ``jit``: eager, jitted and vmapped results are bit-identical.
"""

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.experimental import checkify

from sparseinit import _masks, _sampling
from sparseinit._counting import num_zeros_traced
from sparseinit._layout import Layout
from sparseinit._sharding import constrain, run_auto, view_sharding


@dataclasses.dataclass(frozen=True)
class Plan:
    """Everything static about one call of an initializer.

    Attributes:
        name: the public factory's name, for messages.
        layout: neurons and fan-in of the requested shape.
        dtype: the canonical result dtype.
        zeros: zeros per neuron, or ``None`` when the sparsity is traced.
        rounding: how a traced sparsity's count is rounded.
        distribution: the kept weights' distribution, or ``None`` with ``base_init``.
        scale: the multiplier of the unit-scale distribution.
        rescale: whether kept weights are scaled by ``sqrt(fan_in / kept)``.
        base_init: the dense initializer whose values are masked (``sparsify``), or ``None``.
        sharding: the requested ``out_sharding``.
        min_kept: the fewest weights a neuron keeps; caps a traced sparsity's count.
    """

    name: str
    layout: Layout
    dtype: np.dtype
    zeros: int | None
    rounding: str
    distribution: str | None
    scale: float
    rescale: bool
    base_init: Callable[..., jax.Array] | None
    sharding: Any
    min_kept: int = 0


def _check_traced(plan: Plan, sparsity: jax.Array) -> jax.Array:
    valid = (sparsity >= 0) & (sparsity <= 1)
    checkify.debug_check(
        valid, f"{plan.name}: sparsity must be in [0, 1], got {{sparsity}}", sparsity=sparsity
    )
    return valid


def _rescale_factor(plan: Plan, zeros: int | jax.Array, dtype: np.dtype) -> Any:
    fan_in = plan.layout.fan_in
    kept = jnp.maximum(fan_in - zeros, 1)
    return jnp.sqrt(jnp.asarray(fan_in, dtype) / jnp.asarray(kept, dtype))


def _dense_values(plan: Plan, key: jax.Array, factor: Any) -> jax.Array:
    assert plan.distribution is not None
    draws = _sampling.draw(key, plan.layout.view_shape, plan.distribution, plan.dtype)
    values = _sampling.scaled(draws, plan.scale * factor)
    return _sampling.nonzero(values, plan.dtype)


@functools.partial(jax.jit, static_argnums=(0, 1))
def build(plan: Plan, want_mask: bool, key: jax.Array, sparsity: jax.Array | None) -> jax.Array:
    """The weights of ``plan`` drawn with ``key`` (or, with ``want_mask``, their support).

    Args:
        plan: the static description of the call.
        want_mask: return the boolean support instead of the weights.
        key: a single typed key.
        sparsity: the traced sparsity when ``plan.zeros`` is ``None``; otherwise ``None``.

    Returns:
        The weights, or the mask, of ``plan.layout.shape``, sharded as ``plan.sharding``.
    """
    # Explicit mesh axes refuse the constraints that keep every intermediate sharded.
    return run_auto(plan.sharding, lambda: _build(plan, want_mask, key, sparsity))


def _build(plan: Plan, want_mask: bool, key: jax.Array, sparsity: jax.Array | None) -> jax.Array:
    layout = plan.layout
    num_neurons, fan_in = layout.num_neurons, layout.fan_in
    mask_key, value_key = jax.random.split(key)
    if plan.zeros is None:
        assert sparsity is not None
        valid = _check_traced(plan, sparsity)
        zeros = num_zeros_traced(sparsity, fan_in, plan.rounding, plan.min_kept)
        place_kept = 2 * zeros > fan_in
        count = jnp.where(place_kept, fan_in - zeros, zeros)
        max_count = fan_in // 2
    else:
        valid = None
        zeros = plan.zeros
        place_kept = 2 * zeros > fan_in
        count = max_count = fan_in - zeros if place_kept else zeros

    placement = view_sharding(plan.sharding, layout)
    wide = _sampling.compute_dtype(plan.dtype)
    factor = _rescale_factor(plan, zeros, wide) if plan.rescale else 1.0

    def place(view: jax.Array, fill: Callable[[jax.Array], jax.Array]) -> jax.Array:
        # The sampler on the layout's 2-D view, and the result back in the array's shape.
        view = _masks.choose(
            mask_key,
            constrain(view, placement),
            count,
            place_kept,
            fill,
            max_count=max_count,
            neuron_dim=layout.neuron_dim,
        )
        return layout.from_view(view)

    def finish(result: jax.Array, invalid_fill: Any) -> jax.Array:
        if valid is not None:
            result = jnp.where(valid, result, invalid_fill)
        return constrain(result, plan.sharding)

    if want_mask or plan.base_init is not None:
        # The mask alone: False marks zeros when zeros are placed, True marks kept weights.
        unmarked = jnp.broadcast_to(jnp.logical_not(place_kept), layout.view_shape)
        marks = jnp.broadcast_to(place_kept, (_masks.BLOCK, num_neurons))
        mask = place(unmarked, lambda _: marks)
        if want_mask:
            return finish(mask, True)
        assert plan.base_init is not None
        # The constraint, not an out_sharding argument, places the dense values: jax.random
        # takes out_sharding only for Explicit axes, and a user's base_init may not take it.
        values = constrain(
            jnp.asarray(plan.base_init(value_key, layout.shape, plan.dtype)), plan.sharding
        )
        if plan.rescale:
            values = _sampling.scaled(values, jnp.asarray(factor, plan.dtype))
        weights = jnp.where(mask, _sampling.nonzero(values, plan.dtype), jnp.zeros((), plan.dtype))
        return finish(weights, jnp.nan)

    assert plan.distribution is not None
    distribution = plan.distribution

    def fill(block: jax.Array) -> jax.Array:
        # Kept weights are drawn only for the steps that place them.
        shape = (_masks.BLOCK, num_neurons)
        if place_kept is False:
            return jnp.zeros(shape, plan.dtype)
        draws = _sampling.draw(
            jax.random.fold_in(value_key, block), shape, distribution, plan.dtype
        )
        kept = _sampling.nonzero(_sampling.scaled(draws, plan.scale * factor), plan.dtype)
        return kept if place_kept is True else jnp.where(place_kept, kept, jnp.zeros_like(kept))

    def empty() -> jax.Array:
        return jnp.zeros(layout.view_shape, plan.dtype)

    def dense() -> jax.Array:
        return _dense_values(plan, value_key, factor)

    if isinstance(place_kept, bool):
        view = empty() if place_kept else dense()
    else:
        view = lax.cond(place_kept, empty, dense)
    return finish(place(view, fill), jnp.nan)
