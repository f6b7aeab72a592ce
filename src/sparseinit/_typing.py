"""Type aliases shared by the public signatures.

The aliases are deliberately permissive about *values* (a negative dimension or a bool sparsity
still type-checks) so that bad values reach the library's own validation and get its
``ValueError`` naming the argument, rather than a generic type-checker error.
"""

from collections.abc import Sequence
from typing import Any, TypeAlias

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec
from jaxtyping import Array, Key, UInt32

# The contract is one key, jaxtyping's PRNGKeyArray; the alias admits a batch of keys so that
# under a runtime type checker (the tests run under beartype) a batch still reaches the
# library's own error, which names the key's shape and says to use vmap.
#: A typed key (``jax.random.key``) or a raw ``uint32`` key (``jax.random.PRNGKey``), unbatched.
KeyLike: TypeAlias = Key[Array, "*batch"] | UInt32[Array, "*batch"]
#: A shape: a sequence of non-negative integers.
ShapeLike: TypeAlias = Sequence[Any]
#: A number such as ``sparsity``, ``scale``, ``std`` or a count: a Python or NumPy number, or a
#: scalar (possibly traced) JAX array. Non-integer counts reach the validation, which names them.
ScalarLike: TypeAlias = float | int | np.number | np.bool_ | np.ndarray | jax.Array
#: ``sparse_init``'s sparsity, or the dtype that Flax passes when ``sparse_init`` is mistaken
#: for a ``kernel_init``: admitted here so that ``sparse_init`` can explain the mistake.
SparseInitSparsity: TypeAlias = ScalarLike | type | np.dtype | str
#: Anything ``jnp.dtype`` accepts, or ``None`` for the initializer's default.
DTypeLike: TypeAlias = Any
#: Where the result lives: a ``NamedSharding``, a ``PartitionSpec`` under a mesh, or ``None``.
OutSharding: TypeAlias = NamedSharding | PartitionSpec | None
#: An axis or a sequence of axes.
AxisLike: TypeAlias = int | np.integer | Sequence[int | np.integer]
