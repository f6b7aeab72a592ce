"""The distributions of kept weights, drawn so that a kept weight is never exactly zero.

``init.mask(key, shape) == (init(key, shape) != 0)`` must hold in every float dtype. A plain
``jax.random.uniform(key, shape, dtype, -b, b)`` can return exactly zero (in bfloat16 one draw
in 128 does), so values are drawn in float32 (float64 for float64 weights) on a grid that
excludes zero and are cast afterwards; whatever a cast or a base initializer still leaves at
zero becomes the dtype's smallest normal number, with its sign.
"""

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

DISTRIBUTIONS = ("uniform", "normal", "truncated_normal")

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
        bits, p = jax.random.bits(key, shape, jnp.uint64), 52
        numerator = (bits >> jnp.uint64(64 - p)) * jnp.uint64(2) + jnp.uint64(1)
    else:
        bits, p = jax.random.bits(key, shape, jnp.uint32), 23
        numerator = (bits >> jnp.uint32(32 - p)) * jnp.uint32(2) + jnp.uint32(1)
    one = np.asarray(2.0**p, dtype)
    return (numerator.astype(dtype) - one) / one


def draw(key: jax.Array, shape: tuple[int, ...], distribution: str, dtype: np.dtype) -> jax.Array:
    """Draws unit-scale values of ``distribution`` in the compute dtype of ``dtype``.

    ``"uniform"`` is U(-1, 1), ``"normal"`` is N(0, 1) and ``"truncated_normal"`` is a normal
    truncated to two standard deviations and rescaled to unit variance.
    """
    wide = compute_dtype(dtype)
    if distribution == "uniform":
        return symmetric_uniform(key, shape, wide)
    if distribution == "normal":
        return jax.random.normal(key, shape, wide)
    return jax.random.truncated_normal(key, -2.0, 2.0, shape, wide) / np.asarray(
        TRUNCATED_NORMAL_STD, wide
    )


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
