"""``sparse_init``: a drop-in for the functional JAX ``sparse_init`` the project started from."""

import numbers
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from sparseinit._checks import check_choice, check_unit_interval
from sparseinit._count import BySparsity
from sparseinit._pipeline import Rank, Recipe, draw_weights
from sparseinit._typing import KeyLike, ShapeLike, SparseInitSparsity
from sparseinit._values import Distribution

INIT_TYPES = ("uniform", "normal")


def _as_dtype(value: Any) -> np.dtype | None:
    # Flax calls kernel_init(key, shape, param_dtype): a dtype lands where sparsity belongs.
    if value is None or isinstance(value, numbers.Number | np.generic | np.ndarray | jax.Array):
        return None
    try:
        return jnp.dtype(value)
    except TypeError:
        return None


def sparse_init(
    key: KeyLike,
    shape: ShapeLike,
    sparsity: SparseInitSparsity = 0.9,
    init_type: str = "uniform",
) -> Float[Array, "fan_out fan_in"]:
    """A sparsely initialised ``(fan_out, fan_in)`` weight matrix, as the seed function makes.

    Rows are neurons: each row gets exactly ``round(sparsity * fan_in)`` zeros (half up, the
    seed's ``int(sparsity * fan_in + 0.5)``) at uniformly random positions, and the other
    weights are ``U(-b, b)`` (``"uniform"``) or ``N(0, b^2)`` (``"normal"``) with
    ``b = 1 / sqrt(fan_in)``, in float32. This is :func:`sparseinit.sparse` with
    ``rounding="round"``, ``in_axis=-1``, ``out_axis=-2`` and ``dtype=float32``; unlike the
    seed it validates its arguments and accepts a traced ``sparsity``.

    Args:
        key: a JAX random key.
        shape: ``(fan_out, fan_in)``.
        sparsity: fraction of each row's inputs set to zero, in ``[0, 1]``.
        init_type: ``"uniform"`` or ``"normal"``.

    Returns:
        A float32 array of ``shape``.

    Raises:
        ValueError: if ``init_type`` is not ``"uniform"`` or ``"normal"``, the shape is not
            2-D, or the sparsity is not in ``[0, 1]`` (a dtype there means ``sparse_init`` was
            given as a ``kernel_init``: use :func:`sparseinit.sparse` for that).

    Examples:
        >>> import jax.random as jr
        >>> from sparseinit import sparse_init
        >>> weights = sparse_init(jr.key(42), (128, 10), sparsity=0.9)
        >>> weights.shape, weights.dtype
        ((128, 10), dtype('float32'))
        >>> set((weights == 0).sum(axis=1).tolist())  # int(0.9 * 10 + 0.5) zeros per row
        {9}
    """
    name = "sparse_init"
    init_type = check_choice(name, "init_type", init_type, INIT_TYPES)
    dtype = _as_dtype(sparsity)
    if dtype is not None:
        raise ValueError(
            f"{name}: sparsity must be a number in [0, 1], got the dtype "
            f"{dtype.name}: sparse_init is a function of (key, shape, sparsity), "
            "not an initializer, and Flax calls kernel_init(key, shape, dtype); for a layer use "
            "kernel_init=sparseinit.sparse(0.9, rounding='round'), the same rule for Flax's "
            "(in, out) kernels"
        )
    # sparse()'s recipe with the seed's axes, rounding, rank and dtype; the call checks the
    # shape (exactly 2-D) and the key.
    recipe = Recipe(
        axes=(-1, -2, ()),
        count=BySparsity(check_unit_interval(name, "sparsity", sparsity), "round"),
        values=Distribution(init_type, 1.0, per_fan_in=True),
        rank=Rank(2, "(fan_out, fan_in)"),
    )
    return draw_weights(name, recipe, key, shape, "float32", None)
