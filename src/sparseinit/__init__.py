"""sparseinit: exact sparse weight initializers for JAX and Flax.

Every initializer follows the JAX protocol ``init(key, shape, dtype=None, out_sharding=None)``
and has ``init.mask(key, shape)``. Importing this package imports JAX only; the Flax and Optax
helpers live in :mod:`sparseinit.flax` and :mod:`sparseinit.optax`, and the sparsity report in
:mod:`sparseinit.report`. Each is imported on first use as an attribute
(``sparseinit.flax.report(model)`` after ``import sparseinit``), so that Flax and Optax are
imported only by those who use them.

Examples:
    >>> import jax, sparseinit
    >>> w = sparseinit.sparse(0.9)(jax.random.key(0), (784, 256))
    >>> int((w[:, 0] == 0).sum())
    706
"""

import importlib
from types import ModuleType

from sparseinit._condensed import Condensed, condense
from sparseinit._count import num_zeros
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
from sparseinit._sparse_init import sparse_init

__version__ = "0.1.0"

# Public submodules imported on first attribute access: each imports a heavier library.
_SUBMODULES = ("flax", "optax", "report")


def __getattr__(name: str) -> ModuleType:
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_SUBMODULES])


__all__ = [
    "Condensed",
    "Martens",
    "SparseInit",
    "SparseInitializer",
    "Sparsified",
    "TorchSparse",
    "__version__",
    "condense",
    "martens",
    "num_zeros",
    "sparse",
    "sparse_init",
    "sparsify",
    "torch_sparse",
]
