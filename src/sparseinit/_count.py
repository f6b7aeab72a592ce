"""How many zeros each neuron gets: ``R(sparsity * fan_in)`` read as the decimal the user meant.

The product is computed in float32 for Python floats and traced values alike, so that a sweep
traced under ``jit`` gives exactly the counts of the same values given eagerly. Where the
product lies within ``1e-4`` of an integer or a half-integer (or within a few float32 ulps of
one, for large fan-ins where float32 cannot resolve ``1e-4``) the integer or half-integer is
used: ``0.07 * 100`` gives 7 zeros, not the 8 of binary floating point. ``min_kept`` then caps
the count so that every neuron keeps at least ``min(min_kept, fan_in)`` weights.

An initializer states its count as a rule: :class:`BySparsity` (``sparse``, ``sparsify``,
``torch_sparse``) or :class:`ByNonzero` (``martens``: ``fan_in - min(nonzero, fan_in)`` zeros).
Each call turns the rule into a static :class:`Zeros` (a concrete count) or, when the sparsity
is traced, a :class:`TracedSparsity` whose count :func:`zeros_in_jit` computes inside ``jit``.
Both routes end in the same :func:`_count`.
"""

import dataclasses
from typing import Any, TypeAlias, cast

import jax
import jax.numpy as jnp
import numpy as np

from sparseinit._checks import check_count, check_traced_sparsity, is_traced
from sparseinit._typing import ScalarLike


@dataclasses.dataclass(frozen=True)
class BySparsity:
    """``R(sparsity * fan_in)`` zeros, capped so that ``min_kept`` weights remain.

    Attributes:
        sparsity: a float in [0, 1], or a scalar tracer.
        rounding: ``"ceil"``, ``"round"`` or ``"floor"``.
        min_kept: the fewest weights a neuron keeps.
    """

    sparsity: float | jax.Array
    rounding: str
    min_kept: int = 0


@dataclasses.dataclass(frozen=True)
class ByNonzero:
    """Exactly ``min(nonzero, fan_in)`` kept weights (Martens 2010)."""

    nonzero: int


#: How an initializer counts the zeros of a neuron.
CountRule: TypeAlias = BySparsity | ByNonzero


@dataclasses.dataclass(frozen=True)
class Zeros:
    """A concrete count of zeros per neuron."""

    zeros: int


@dataclasses.dataclass(frozen=True)
class TracedSparsity:
    """The static part of a traced sparsity's count; the sparsity itself is a ``jit`` argument."""

    rounding: str
    min_kept: int


#: The count of one call, static (hashable) so that it can be part of a jitted plan.
Count: TypeAlias = Zeros | TracedSparsity

# Absolute tolerance of the decimal rule, and a relative one of 4 float32 ulps: above a product
# of about 200, one float32 ulp exceeds 1e-4 and only the relative tolerance can snap.
_ABS_TOL = 1e-4
_REL_TOL = 2.0**-21


def _count(xp: Any, sparsity: Any, fan_in: int, rounding: str, min_kept: int) -> Any:
    f32 = xp.float32
    product = xp.asarray(sparsity, dtype=f32) * f32(fan_in)
    nearest_half = xp.round(product * f32(2)) / f32(2)
    tolerance = xp.maximum(f32(_ABS_TOL), xp.abs(product) * f32(_REL_TOL))
    product = xp.where(xp.abs(product - nearest_half) <= tolerance, nearest_half, product)
    if rounding == "ceil":
        count = xp.ceil(product)
    elif rounding == "round":
        count = xp.floor(product + f32(0.5))
    else:
        count = xp.floor(product)
    most = fan_in - min(min_kept, fan_in)
    return xp.clip(count, 0, most).astype(xp.int32)


def _concrete(sparsity: float, fan_in: int, rounding: str, min_kept: int) -> int:
    with np.errstate(all="ignore"):
        return int(_count(np, np.float32(sparsity), fan_in, rounding, min_kept))


def num_zeros(
    sparsity: float, fan_in: int, rounding: str = "ceil", *, min_kept: ScalarLike = 0
) -> int:
    """The number of zeros per neuron for a concrete sparsity.

    ``min(R(sparsity * fan_in), fan_in - min(min_kept, fan_in))``: the rounded product, capped
    so that the neuron keeps at least ``min_kept`` weights (all of them if ``fan_in`` is
    smaller).

    Args:
        sparsity: a float in [0, 1].
        fan_in: the neuron's fan-in.
        rounding: ``"ceil"`` (the default), ``"round"`` (half up) or ``"floor"``.
        min_kept: the fewest weights a neuron keeps; ``0`` (the default, the published
            reference's rule) lets a high sparsity on a small fan-in zero a whole neuron.

    Returns:
        An int in ``[0, fan_in]``.

    Raises:
        ValueError: if ``min_kept`` is not a non-negative integer.

    Examples:
        >>> num_zeros(0.07, 100, "ceil")
        7
        >>> num_zeros(0.9, 784, "ceil"), num_zeros(0.9, 784, "round"), num_zeros(0.9, 784, "floor")
        (706, 706, 705)
        >>> num_zeros(0.025, 100, "round")
        3
        >>> num_zeros(0.9, 4, "ceil"), num_zeros(0.9, 4, "ceil", min_kept=1)  # fan-in 4
        (4, 3)
    """
    return _concrete(sparsity, fan_in, rounding, check_count("num_zeros", "min_kept", min_kept))


def num_zeros_traced(
    sparsity: jax.Array, fan_in: int, rounding: str, min_kept: int = 0
) -> jax.Array:
    """The same count as :func:`num_zeros` for a traced sparsity, as an int32 scalar.

    A NaN or out-of-range sparsity gives an unspecified count; callers check validity apart.
    """
    safe = jnp.where(jnp.isnan(sparsity), 0.0, sparsity)
    return _count(jnp, safe, fan_in, rounding, min_kept)


def count_of(rule: CountRule, fan_in: int) -> tuple[Count, jax.Array | None]:
    """The static count of a call with this ``fan_in``, and the traced sparsity if there is one."""
    if isinstance(rule, ByNonzero):
        return Zeros(fan_in - min(rule.nonzero, fan_in)), None
    if is_traced(rule.sparsity):
        return TracedSparsity(rule.rounding, rule.min_kept), cast(jax.Array, rule.sparsity)
    return Zeros(_concrete(float(rule.sparsity), fan_in, rule.rounding, rule.min_kept)), None


def zeros_in_jit(
    fn: str, count: Count, fan_in: int, sparsity: jax.Array | None
) -> tuple[int | jax.Array, jax.Array | None]:
    """Zeros per neuron inside the builder, and whether a traced sparsity is valid.

    Returns:
        ``(zeros, valid)``: the concrete count and ``None``, or the traced count and a traced
        bool that is ``False`` for a NaN or out-of-range sparsity (the builder then poisons the
        result, since nothing can raise inside ``jit``).
    """
    if isinstance(count, Zeros):
        return count.zeros, None
    # A traced count comes with its sparsity: count_of returns the two together.
    traced = cast(jax.Array, sparsity)
    valid = check_traced_sparsity(fn, traced)
    return num_zeros_traced(traced, fan_in, count.rounding, count.min_kept), valid
