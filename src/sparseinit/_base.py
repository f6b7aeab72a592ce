"""The base of every initializer: the JAX protocol, ``mask``, ``condensed`` and ``repr``.

A concrete initializer is a final frozen dataclass whose fields are its parameters; it says what
it is in one method, :meth:`SparseInitializer._recipe`. Calling it, its mask and its condensed
form go through one pipeline (:mod:`sparseinit._pipeline`): check and plan, then a jitted build.
"""

import abc
import dataclasses
from typing import Any, ClassVar

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Inexact

from sparseinit._checks import check_key, is_traced
from sparseinit._count import Zeros
from sparseinit._pipeline import Recipe, build, draw_mask, draw_weights, plan
from sparseinit._typing import DTypeLike, KeyLike, OutSharding, ShapeLike
from sparseinit._wrapped_init import describe


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
        return draw_mask(self._name, self._recipe(), key, shape, out_sharding)

    def condensed(self, key: KeyLike, shape: ShapeLike, dtype: DTypeLike = None) -> Any:
        """The weights of ``self(key, shape, dtype)`` stored condensed: the kept ones only.

        ``init.condensed(key, shape, dtype).todense()`` equals ``init(key, shape, dtype)`` bit
        for bit: the weights are the call's, from the same compiled program, and the kept ones
        are taken at the support the sampler drew (the program of :meth:`mask`), never where
        the weights are non-zero. Every neuron keeps the same number of weights, so the count
        must be concrete.

        Args:
            key: the key that is (or will be) passed to the initializer.
            shape: the weight shape.
            dtype: as for the call.

        Returns:
            A :class:`sparseinit.Condensed`.

        Raises:
            ValueError: as the call does, and for a traced sparsity.
        """
        from sparseinit import _condensed

        call_plan, traced = plan(self._name, self._recipe(), shape, None, dtype=dtype)
        if not isinstance(call_plan.count, Zeros):
            raise ValueError(
                f"{self._name}.condensed: sparsity must be concrete, got a traced value: the "
                "number of kept weights sets the shape of the condensed arrays"
            )
        layout = call_plan.layout
        kept = layout.fan_in - call_plan.count.zeros
        typed_key = check_key(self._name, key)
        if call_plan.is_empty:
            empty = jnp.zeros(layout.shape, call_plan.dtype)
            return _condensed.compact(empty, empty != 0, layout, kept)
        # The call's and the mask's own programs: a program that returned both could fuse the
        # values differently and round them differently in the last bit.
        weights = build(call_plan, typed_key, traced)
        mask_plan = dataclasses.replace(call_plan, dtype=None, values=None, rescale=False)
        support = build(mask_plan, typed_key, traced)
        return _condensed.compact(weights, support, layout, kept)

    def __repr__(self) -> str:
        parts = []
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            shown = field.name in self._always_shown or is_traced(value)
            if shown or value != field.default:
                parts.append(f"{field.name}={_format(value)}")
        return f"{self._name}({', '.join(parts)})"
