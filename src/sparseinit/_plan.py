"""The records between the layers: what an initializer is, and what one call of it builds.

An initializer says what it is in a :class:`Recipe` (its axes, count rule, values, rescale,
default dtype and accepted rank). A call turns the recipe, with the shape, dtype and sharding
it is given, into a :class:`MaskPlan` (everything that fixes the zeros) and, for the weights, a
:class:`Plan` (the mask plan and the values). Plans are static: frozen and hashable, they are
the static arguments of the jitted builder, so each compiles once.
"""

import dataclasses
from typing import Any

import numpy as np

from sparseinit._count import Count, CountRule
from sparseinit._layout import Layout
from sparseinit._values import Values
from sparseinit._typing import AxisLike, DTypeLike


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
class MaskPlan:
    """Everything static that fixes the zeros of one call.

    Attributes:
        name: the public function's name, for messages.
        layout: neurons and fan-in of the requested shape.
        count: the zeros per neuron, or the static part of a traced sparsity's count.
        sharding: the requested ``out_sharding``.
    """

    name: str
    layout: Layout
    count: Count
    sharding: Any


@dataclasses.dataclass(frozen=True)
class Plan:
    """Everything static about the weights of one call.

    Attributes:
        mask: the plan of the zeros.
        dtype: the canonical result dtype.
        values: the kept weights' distribution at this fan-in's scale, or the base
            initializer (as it is to be called).
        rescale: whether kept weights are scaled by ``sqrt(fan_in / kept)``.
    """

    mask: MaskPlan
    dtype: np.dtype
    values: Values
    rescale: bool
