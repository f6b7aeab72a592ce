"""Building one weight array, or its mask, from a static plan: the jitted core of every call.

Each initializer turns its call into a :class:`~sparseinit._plan.Plan` (or, for the mask, a
:class:`~sparseinit._plan.MaskPlan`) and hands it, with the key and any traced sparsity, to
:func:`build_weights` (or :func:`build_mask`). Both are jitted with the plan static, so an eager
call compiles once per plan and runs the same program as a call inside the user's ``jit``:
eager, jitted and vmapped results are bit-identical. The mask plan holds nothing of the values,
so one compiled mask serves every distribution, scale and base initializer.

This module only orchestrates: the count comes from :mod:`sparseinit._count`, the zeros
from :mod:`sparseinit._mask`, the values from :mod:`sparseinit._values` and the placement
from :mod:`sparseinit._sharding`.
"""

import functools

import jax
import jax.numpy as jnp

from sparseinit import _random
from sparseinit._count import zeros_in_jit
from sparseinit._mask import draw_exact_zeros, orient
from sparseinit._plan import MaskPlan, Plan
from sparseinit._values import (
    Distribution,
    compute_dtype,
    kept_values,
    masked_base_values,
    rescale_factor,
)
from sparseinit._sharding import constrain, fan_in_shards, run_auto, view_sharding


@functools.partial(jax.jit, static_argnums=(0,))
def build_weights(plan: Plan, key: jax.Array, sparsity: jax.Array | None) -> jax.Array:
    """The weights of ``plan`` drawn with ``key``.

    Args:
        plan: the static description of the call.
        key: a single typed key.
        sparsity: the traced sparsity when the plan's count is traced; otherwise ``None``.

    Returns:
        The weights, of ``plan.mask.layout.shape``, sharded as ``plan.mask.sharding``.
    """
    # Explicit mesh axes refuse the constraints that keep every intermediate sharded.
    return run_auto(plan.mask.sharding, lambda: _draw(plan.mask, plan, key, sparsity)[0])


@functools.partial(jax.jit, static_argnums=(0,))
def build_mask(plan: MaskPlan, key: jax.Array, sparsity: jax.Array | None) -> jax.Array:
    """The support of the weights that ``key`` gives: ``True`` where a weight is kept."""
    return run_auto(plan.sharding, lambda: _draw(plan, None, key, sparsity)[0])


@functools.partial(jax.jit, static_argnums=(0,))
def dependent_steps(plan: Plan, key: jax.Array, sparsity: jax.Array | None) -> jax.Array:
    """The rounds the correction of ``plan`` runs with ``key``: its dependent steps.

    Each round applies a batch of proposals for every neuron at once; the number is the same
    for the weights and the mask, and nearly always 1.
    """
    return _draw(plan.mask, None, key, sparsity)[1]


def _draw(
    mask: MaskPlan, weights: Plan | None, key: jax.Array, sparsity: jax.Array | None
) -> tuple[jax.Array, jax.Array]:
    # The weights of `weights`, or with None the mask, and the correction's rounds.
    layout = mask.layout
    start_key, step_key, value_key = _random.split(key, 3)
    zeros, valid = zeros_in_jit(mask.name, mask.count, layout.fan_in, sparsity)
    placement = view_sharding(mask.sharding, layout)
    # Random words of an array with no requested sharding may be drawn flat (_values.drawn_as).
    flat = mask.sharding is None
    place = functools.partial(constrain, sharding=placement)
    shards = fan_in_shards(placement, layout)
    support, steps = draw_exact_zeros(
        layout, zeros, start_key, step_key, place, fan_in_shards=shards, flat=flat
    )

    def finish(result: jax.Array, invalid_fill: bool | float) -> jax.Array:
        if valid is not None:
            result = jnp.where(valid, result, invalid_fill)
        return constrain(result, mask.sharding)

    if weights is None:
        return finish(support, True), steps
    # A value for every cell, kept where the support is.
    factor = None
    if weights.rescale:
        factor = rescale_factor(layout.fan_in, zeros, compute_dtype(weights.dtype))
    if isinstance(weights.values, Distribution):
        scale = 1.0 if factor is None else factor
        draw = kept_values(value_key, weights.values, scale, weights.dtype, flat=flat)
        # Drawn as (fan_in, neurons) in the view's placement, so that no device holds them all.
        drawn = draw((layout.fan_in, layout.num_neurons))
        dense = layout.from_view(place(orient(drawn, layout.neuron_dim)))
        return finish(jnp.where(support, dense, jnp.zeros((), dense.dtype)), jnp.nan), steps
    place_dense = functools.partial(constrain, sharding=mask.sharding)
    dense = masked_base_values(
        weights.values.init, value_key, support, weights.dtype, factor, place_dense
    )
    return finish(dense, jnp.nan), steps
