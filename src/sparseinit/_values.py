"""The values of kept weights: distributions drawn so that a kept weight is never exactly zero.

``init.mask(key, shape) == (init(key, shape) != 0)`` must hold in every float dtype. A plain
``jax.random.uniform(key, shape, dtype, -b, b)`` can return exactly zero (in bfloat16 one draw
in 128 does), so values are drawn in float32 (float64 for float64 weights) on a grid that
excludes zero and are cast afterwards; whatever a cast or a base initializer still leaves at
zero becomes the dtype's smallest normal number, with its sign.

An initializer's values are a :class:`Distribution` (scaled unit draws) or :class:`FromBase`
(another initializer's values under the mask). The builder asks this module for the values
of the kept cells (:func:`kept_values`), the rescale factor (:func:`rescale_factor`) and the
masked values of a base initializer (:func:`masked_base_values`).
"""

import dataclasses
import math
from collections.abc import Callable
from typing import Any, TypeAlias

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from sparseinit import _random


@dataclasses.dataclass(frozen=True)
class Distribution:
    """Kept weights drawn from a unit-scale distribution times ``scale``.

    Attributes:
        name: ``"uniform"``, ``"normal"`` or ``"truncated_normal"`` (see :func:`draw`).
        scale: the multiplier of the unit draws.
        per_fan_in: divide ``scale`` by ``sqrt(fan_in)`` (the published reference's scale).
    """

    name: str
    scale: float
    per_fan_in: bool = False

    def for_fan_in(self, fan_in: int) -> "Distribution":
        """The same distribution with the scale of a neuron of this fan-in."""
        if not self.per_fan_in:
            return self
        return Distribution(self.name, self.scale / math.sqrt(max(fan_in, 1)))


@dataclasses.dataclass(frozen=True)
class FromBase:
    """Kept weights taken from a base initializer's dense values (``sparsify``)."""

    init: Callable[..., Any]


#: Where the kept weights come from.
Values: TypeAlias = Distribution | FromBase

# Standard deviation of a unit normal truncated to (-2, 2); jax.nn.initializers divides by it
# so that "truncated_normal" has the requested standard deviation.
TRUNCATED_NORMAL_STD = 0.87962566103423978


def compute_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype in which values are drawn before the cast to ``dtype``."""
    return np.dtype(np.float64) if dtype == np.float64 else np.dtype(np.float32)


def symmetric_uniform(key: jax.Array, shape: tuple[int, ...], dtype: np.dtype) -> jax.Array:
    """Draws from U(-1, 1) on the grid of odd multiples of ``2**-p``, which excludes zero.

    ``dtype`` is float32 (``p = 23``) or float64 (``p = 52``); each odd numerator is exact.
    """
    if dtype == np.float64:
        bits, p = _random.bits(key, shape, jnp.uint64), 52
        numerator = (bits >> jnp.uint64(64 - p)) * jnp.uint64(2) + jnp.uint64(1)
    else:
        bits, p = _random.bits(key, shape, jnp.uint32), 23
        numerator = (bits >> jnp.uint32(32 - p)) * jnp.uint32(2) + jnp.uint32(1)
    one = np.asarray(2.0**p, dtype)
    return (numerator.astype(dtype) - one) / one


def uniform_between(
    key: jax.Array, shape: tuple[int, ...], dtype: np.dtype, low: Any, high: Any
) -> jax.Array:
    """``jax.random.uniform(key, shape, dtype, low, high)`` bit for bit, from the written-out words.

    ``dtype`` is float32 or float64. The steps are JAX's: the top mantissa bits of a random word
    make a float in ``[1, 2)``, which is shifted and scaled to ``[low, high)``.
    """
    wide = np.dtype(dtype) == np.float64
    unsigned = jnp.uint64 if wide else jnp.uint32
    width, mantissa = (64, 52) if wide else (32, 23)
    words = _random.bits(key, shape, unsigned)
    one = np.array(1.0, dtype).view(np.uint64 if wide else np.uint32)
    mantissas = lax.shift_right_logical(words, jnp.asarray(width - mantissa, unsigned))
    floats = lax.bitcast_convert_type(lax.bitwise_or(mantissas, jnp.asarray(one, unsigned)), dtype)
    low = lax.convert_element_type(low, dtype)
    high = lax.convert_element_type(high, dtype)
    return lax.max(low, (floats - jnp.asarray(1.0, dtype)) * (high - low) + low)


def draw(key: jax.Array, shape: tuple[int, ...], distribution: str, dtype: np.dtype) -> jax.Array:
    """Draws unit-scale values of ``distribution`` in the compute dtype of ``dtype``.

    ``"uniform"`` is U(-1, 1), ``"normal"`` is N(0, 1) and ``"truncated_normal"`` is a normal
    truncated to two standard deviations and rescaled to unit variance. The normal values are
    ``jax.random.normal``'s and ``jax.random.truncated_normal``'s bit for bit, computed from the
    written-out words (a test compares them): with JAX's looped generator a dense normal draw
    cost more than all the rest of a sparse kernel.
    """
    wide = compute_dtype(dtype)
    if distribution == "uniform":
        return symmetric_uniform(key, shape, wide)
    sqrt2 = np.array(np.sqrt(2), wide)
    if distribution == "normal":
        low = np.nextafter(np.array(-1.0, wide), np.array(0.0, wide), dtype=wide)
        u = uniform_between(key, shape, wide, low, np.array(1.0, wide))
        return lax.mul(sqrt2, lax.erf_inv(u))
    # JAX's truncated normal: the normal's inverse CDF over the bounds' probabilities, clamped
    # inside the open interval.
    lower, upper = (lax.convert_element_type(bound, wide) for bound in (-2.0, 2.0))
    u = uniform_between(key, shape, wide, lax.erf(lower / sqrt2), lax.erf(upper / sqrt2))
    inside = (
        lax.nextafter(lower, np.array(np.inf, wide)),
        lax.nextafter(upper, np.array(-np.inf, wide)),
    )
    unit = jnp.clip(sqrt2 * lax.erf_inv(u), *inside)
    return unit / np.asarray(TRUNCATED_NORMAL_STD, wide)


def scaled(values: jax.Array, scale: Any) -> jax.Array:
    """``values * scale``, computed the same way whether ``scale`` is a constant or traced.

    With a constant scale XLA would fold it into the distribution's own constant factors
    (``sqrt(2) * erfinv(u) * scale`` becomes ``erfinv(u) * (sqrt(2) * scale)``), which rounds
    differently from the traced computation; the barrier keeps a concrete and a traced
    sparsity bit-identical.
    """
    return lax.optimization_barrier(values) * scale


def nonzero(values: jax.Array, dtype: np.dtype) -> jax.Array:
    """Casts to ``dtype`` and replaces exact zeros by the smallest normal number, signed."""
    values = values.astype(dtype)
    if jnp.issubdtype(dtype, jnp.complexfloating):
        tiny = np.asarray(jnp.finfo(dtype).tiny, dtype)
        return jnp.where(values == 0, tiny, values)
    tiny = np.asarray(jnp.finfo(dtype).tiny, dtype)
    return jnp.where(values == 0, jnp.copysign(tiny, values), values)


def rescale_factor(fan_in: int, zeros: int | jax.Array, dtype: np.dtype) -> jax.Array:
    """``sqrt(fan_in / kept)`` in ``dtype``; a neuron with no kept weight gets ``sqrt(fan_in)``."""
    kept = jnp.maximum(fan_in - zeros, 1)
    return jnp.sqrt(jnp.asarray(fan_in, dtype) / jnp.asarray(kept, dtype))


def kept_values(
    key: jax.Array, values: Distribution, factor: Any, dtype: np.dtype
) -> Callable[[tuple[int, int]], jax.Array]:
    """``draw(shape)``: the values of ``shape`` for kept cells, scaled, in ``dtype``, non-zero."""

    def draw_kept(shape: tuple[int, int]) -> jax.Array:
        draws = draw(key, shape, values.name, dtype)
        return nonzero(scaled(draws, values.scale * factor), dtype)

    return draw_kept


def masked_base_values(
    base_init: Callable[..., Any],
    key: jax.Array,
    support: jax.Array,
    dtype: np.dtype,
    factor: Any | None,
    place: Callable[[jax.Array], jax.Array],
) -> jax.Array:
    """The base initializer's values where ``support`` is ``True`` (never zero), else zero.

    Args:
        base_init: called as ``base_init(key, shape, dtype)``.
        key: the values' key.
        support: the mask, of the weights' shape.
        dtype: the weights' dtype.
        factor: the rescale factor, or ``None`` for none.
        place: constrains the dense values to the result's sharding.
    """
    # The constraint, not an out_sharding argument, places the dense values: jax.random
    # takes out_sharding only for Explicit axes, and a user's base_init may not take it.
    dense = place(jnp.asarray(base_init(key, support.shape, dtype)))
    if factor is not None:
        dense = scaled(dense, jnp.asarray(factor, dtype))
    return jnp.where(support, nonzero(dense, dtype), jnp.zeros((), dtype))
