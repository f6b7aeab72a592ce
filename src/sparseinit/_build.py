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
    return run_auto(plan.sharding, lambda: _build(plan, want_mask, key, sparsity)[0])


@functools.partial(jax.jit, static_argnums=(0,))
def dependent_steps(plan: Plan, key: jax.Array, sparsity: jax.Array | None) -> jax.Array:
    """The loop iterations the correction of ``plan`` runs with ``key``: its dependent steps.

    Each iteration makes ``_masks.BLOCK`` proposals for every neuron at once; the number is the
    same for the weights and the mask, and for a traced or a concrete sparsity.
    """
    return _build(plan, True, key, sparsity)[1]


def _build(
    plan: Plan, want_mask: bool, key: jax.Array, sparsity: jax.Array | None
) -> tuple[jax.Array, jax.Array]:
    layout = plan.layout
    num_neurons, fan_in = layout.num_neurons, layout.fan_in
    neuron_dim = layout.neuron_dim
    start_key, step_key, value_key = jax.random.split(key, 3)
    if plan.zeros is None:
        assert sparsity is not None
        valid = _check_traced(plan, sparsity)
        zeros = num_zeros_traced(sparsity, fan_in, plan.rounding, plan.min_kept)
    else:
        valid = None
        zeros = plan.zeros
    rate = _masks.start_rate(fan_in, zeros)
    placement = view_sharding(plan.sharding, layout)
    wide = _sampling.compute_dtype(plan.dtype)
    factor = _rescale_factor(plan, zeros, wide) if plan.rescale else 1.0
    marks_only = want_mask or plan.base_init is not None
    distribution = plan.distribution

    def values(shape: tuple[int, int]) -> jax.Array:
        assert distribution is not None
        draws = _sampling.draw(value_key, shape, distribution, plan.dtype)
        return _sampling.nonzero(_sampling.scaled(draws, plan.scale * factor), plan.dtype)

    def few_kept() -> tuple[jax.Array, jax.Array, jax.Array, Any]:
        # Every cell starts as a zero and the kept cells are placed one by one, the n-th placed
        # cell of a neuron taking the n-th value drawn for it: no dense draw at all.
        bound = _masks.few_kept_bound(fan_in)
        remaining = jnp.broadcast_to(fan_in - zeros, (num_neurons,)).astype(jnp.int32)
        removing = jnp.ones((num_neurons,), bool)
        if marks_only:
            view = jnp.zeros(layout.view_shape, bool)
            return view, remaining, removing, lambda rows, placed: True
        view = jnp.zeros(layout.view_shape, plan.dtype)
        # In the view's orientation and placement, so that no device holds them all.
        drawn = values((max(bound, 1), num_neurons))
        drawn = constrain(_masks.orient(drawn, neuron_dim), placement)
        kept = lambda rows, placed: _masks.take(drawn, placed, neuron_dim)  # noqa: E731
        return view, remaining, removing, kept

    def start() -> tuple[jax.Array, jax.Array, jax.Array, Any]:
        # The Bernoulli start: a byte per cell below the rate makes a zero.
        if isinstance(rate, int) and rate == 0:
            member = jnp.zeros(layout.view_shape, bool)
        else:
            cells = _masks.start_bytes(start_key, fan_in, num_neurons)
            member = _masks.orient(cells < jnp.asarray(rate, jnp.uint32), neuron_dim)
            member = constrain(member, placement)
        count = member.sum(axis=1 - neuron_dim, dtype=jnp.int32)
        removing = count > zeros
        remaining = jnp.abs(count - zeros)
        if marks_only:
            return jnp.logical_not(member), remaining, removing, lambda rows, placed: True
        dense = constrain(_masks.orient(values((fan_in, num_neurons)), neuron_dim), placement)
        view = jnp.where(member, jnp.zeros((), plan.dtype), dense)
        kept = lambda rows, placed: _masks.take(dense, rows, neuron_dim)  # noqa: E731
        return view, remaining, removing, kept

    def sample(begin: Callable[[], tuple]) -> tuple[jax.Array, jax.Array]:
        view, remaining, removing, kept = begin()
        view, steps = _masks.correct(
            step_key, constrain(view, placement), remaining, removing, kept, neuron_dim=neuron_dim
        )
        return layout.from_view(view), steps

    if isinstance(rate, int):
        result, steps = sample(few_kept if rate == 256 else start)
    else:
        result, steps = lax.cond(rate == 256, lambda: sample(few_kept), lambda: sample(start))

    def finish(result: jax.Array, invalid_fill: Any) -> jax.Array:
        if valid is not None:
            result = jnp.where(valid, result, invalid_fill)
        return constrain(result, plan.sharding)

    if want_mask:
        return finish(result, True), steps
    if plan.base_init is not None:
        # The constraint, not an out_sharding argument, places the dense values: jax.random
        # takes out_sharding only for Explicit axes, and a user's base_init may not take it.
        dense = constrain(
            jnp.asarray(plan.base_init(value_key, layout.shape, plan.dtype)), plan.sharding
        )
        if plan.rescale:
            dense = _sampling.scaled(dense, jnp.asarray(factor, plan.dtype))
        weights = jnp.where(result, _sampling.nonzero(dense, plan.dtype), jnp.zeros((), plan.dtype))
        return finish(weights, jnp.nan), steps
    return finish(result, jnp.nan), steps
