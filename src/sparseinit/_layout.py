"""Neurons and fan-in: which axes of a weight array are which.

A *neuron* is one index along the output axes and every batch axis; its *fan-in* is everything
else (the input axes and the receptive field), as in ``jax.nn.initializers.variance_scaling``.
The library draws masks on a "rows" view of the array, shape ``(num_neurons, fan_in)``, with
the neuron axes and then the fan-in axes in increasing order, and moves the result back.
"""

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np


@dataclasses.dataclass(frozen=True)
class Layout:
    """How a weight shape splits into neurons and fan-in.

    Attributes:
        shape: the weight array's shape.
        neuron_axes: batch and output axes, increasing.
        fan_axes: every other axis (input and receptive field), increasing.
    """

    shape: tuple[int, ...]
    neuron_axes: tuple[int, ...]
    fan_axes: tuple[int, ...]

    @classmethod
    def of(
        cls, shape: tuple[int, ...], out_axes: tuple[int, ...], batch_axes: tuple[int, ...]
    ) -> "Layout":
        """Builds the layout from normalised (non-negative) axes."""
        neurons = tuple(sorted(out_axes + batch_axes))
        fans = tuple(a for a in range(len(shape)) if a not in neurons)
        return cls(shape, neurons, fans)

    @property
    def num_neurons(self) -> int:
        """The number of neurons: the product of the output and batch axes."""
        return math.prod(self.shape[a] for a in self.neuron_axes)

    @property
    def fan_in(self) -> int:
        """The fan-in of each neuron: the product of every other axis."""
        return math.prod(self.shape[a] for a in self.fan_axes)

    @property
    def rows_shape(self) -> tuple[int, int]:
        """The shape of the rows view, ``(num_neurons, fan_in)``."""
        return (self.num_neurons, self.fan_in)

    @property
    def _order(self) -> tuple[int, ...]:
        return self.neuron_axes + self.fan_axes

    @property
    def is_plain_transpose(self) -> bool:
        """Whether the rows view is a transpose of the array with no axes merged."""
        return len(self.neuron_axes) == 1 and len(self.fan_axes) == 1

    def to_rows(self, x: jax.Array) -> jax.Array:
        """Views an array of ``shape`` as ``(num_neurons, fan_in)`` rows."""
        return jnp.transpose(x, self._order).reshape(self.rows_shape)

    def from_rows(self, rows: jax.Array) -> jax.Array:
        """Inverse of :meth:`to_rows`."""
        permuted = rows.reshape(tuple(self.shape[a] for a in self._order))
        return jnp.transpose(permuted, tuple(int(a) for a in np.argsort(self._order)))
