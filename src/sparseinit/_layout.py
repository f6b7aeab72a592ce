"""Neurons and fan-in: which axes of a weight array are which.

A *neuron* is one index along the output axes and every batch axis; its *fan-in* is everything
else (the input axes and the receptive field), as in ``jax.nn.initializers.variance_scaling``.
The library draws masks on a 2-D view of the array: ``(fan_in, num_neurons)`` when the neuron
axes come last (a reshape, no copy: Flax kernels) and ``(num_neurons, fan_in)`` otherwise.
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
    def neurons_last(self) -> bool:
        """Whether the neuron axes are the trailing axes (Flax ``Dense`` and ``Conv`` kernels)."""
        ndim = len(self.shape)
        return self.neuron_axes == tuple(range(ndim - len(self.neuron_axes), ndim))

    @property
    def neuron_dim(self) -> int:
        """The neurons' dimension in the 2-D view: 1 if :attr:`neurons_last`, else 0."""
        return 1 if self.neurons_last else 0

    @property
    def view_shape(self) -> tuple[int, int]:
        """The 2-D view's shape: ``(fan_in, num_neurons)`` or ``(num_neurons, fan_in)``."""
        if self.neurons_last:
            return (self.fan_in, self.num_neurons)
        return (self.num_neurons, self.fan_in)

    @property
    def _order(self) -> tuple[int, ...]:
        if self.neurons_last:
            return self.fan_axes + self.neuron_axes
        return self.neuron_axes + self.fan_axes

    @property
    def is_reshape(self) -> bool:
        """Whether the 2-D view is a reshape of the array (no transpose, no copy)."""
        return self._order == tuple(range(len(self.shape)))

    def to_view(self, x: jax.Array) -> jax.Array:
        """A 2-D view of an array of ``shape``: fan-in by neurons, or neurons by fan-in.

        Neurons come last when they are the trailing axes, so that the common kernels need
        only a reshape; otherwise the neuron axes are moved to the front. Either way, neurons
        and fan-in positions are numbered row-major over their axes in increasing order, so
        the mask drawn on the view does not depend on which view it is.
        """
        if self.is_reshape:
            return x.reshape(self.view_shape)
        return jnp.transpose(x, self._order).reshape(self.view_shape)

    def from_view(self, view: jax.Array) -> jax.Array:
        """Inverse of :meth:`to_view`."""
        permuted = view.reshape(tuple(self.shape[a] for a in self._order))
        if self.is_reshape:
            return permuted
        return jnp.transpose(permuted, tuple(int(a) for a in np.argsort(self._order)))
