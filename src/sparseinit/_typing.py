"""Type aliases shared by the public signatures.

The aliases are deliberately permissive about *values* (a negative dimension or a bool sparsity
still type-checks) so that bad values reach the library's own validation and get its
``ValueError`` naming the argument, rather than a generic type-checker error.
"""

from collections.abc import Sequence
from typing import Any, Protocol, TypeAlias

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec
from jaxtyping import Array, Key, UInt32

#: A typed key (``jax.random.key``) or a raw ``uint32`` key (``jax.random.PRNGKey``).
KeyLike: TypeAlias = Key[Array, "*batch"] | UInt32[Array, "*batch"]
#: A shape: a sequence of non-negative integers.
ShapeLike: TypeAlias = Sequence[Any]
#: A sparsity: a Python or NumPy number, or a scalar (possibly traced) JAX array.
SparsityLike: TypeAlias = float | int | np.number | np.bool_ | np.ndarray | jax.Array
#: ``sparse_init``'s sparsity, or the dtype that Flax passes when ``sparse_init`` is mistaken
#: for a ``kernel_init``: admitted here so that ``sparse_init`` can explain the mistake.
SparseInitSparsity: TypeAlias = SparsityLike | type | np.dtype | str
#: A positive hyper-parameter such as ``scale`` or ``std``.
RealLike: TypeAlias = float | int | np.number | np.bool_ | np.ndarray | jax.Array
#: A count such as ``nonzero``; non-integers reach the validation, which names them.
CountLike: TypeAlias = int | float | np.number | np.bool_ | np.ndarray | jax.Array
#: Anything ``jnp.dtype`` accepts, or ``None`` for the initializer's default.
DTypeLike: TypeAlias = Any
#: Where the result lives: a ``NamedSharding``, a ``PartitionSpec`` under a mesh, or ``None``.
OutSharding: TypeAlias = NamedSharding | PartitionSpec | None
#: An axis or a sequence of axes.
AxisLike: TypeAlias = int | np.integer | Sequence[int | np.integer]


class Initializer(Protocol):
    """The JAX initializer protocol, as in ``jax.nn.initializers.Initializer``."""

    def __call__(
        self,
        key: Array,
        shape: ShapeLike,
        dtype: DTypeLike = None,
        out_sharding: OutSharding = None,
    ) -> Array:
        """Returns an array of ``shape`` and ``dtype`` drawn with ``key``."""
        ...
