"""sparseinit: exact sparse weight initializers for JAX and Flax.

Every initializer follows the JAX protocol ``init(key, shape, dtype=None, out_sharding=None)``
and has ``init.mask(key, shape)``. Importing this package imports JAX only; the Flax and Optax
helpers live in :mod:`sparseinit.flax` and :mod:`sparseinit.optax`.

Examples:
    >>> import jax, sparseinit
    >>> w = sparseinit.sparse(0.9)(jax.random.key(0), (784, 256))
    >>> int((w[:, 0] == 0).sum())
    706
"""

from sparseinit._counting import num_zeros
from sparseinit._initializers import (
    Martens,
    SparseInit,
    SparseInitializer,
    Sparsified,
    TorchSparse,
    martens,
    sparse,
    sparsify,
    torch_sparse,
)
from sparseinit._seed import sparse_init

__version__ = "0.1.0"

__all__ = [
    "Martens",
    "SparseInit",
    "SparseInitializer",
    "Sparsified",
    "TorchSparse",
    "__version__",
    "martens",
    "num_zeros",
    "sparse",
    "sparse_init",
    "sparsify",
    "torch_sparse",
]
