"""Checks of every argument at the library's boundary.

Factories check hyper-parameters once; calls check shape, dtype and key. Every failure is a
``ValueError`` whose message names the function, the argument and the value, for example
``sparse: sparsity must be in [0, 1], got 1.2``.
"""

import math
import numbers
import operator
from collections.abc import Sequence
from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np
from jax.core import Tracer

from sparseinit._typing import AxisLike


def is_traced(x: Any) -> bool:
    """Whether ``x`` is a JAX tracer (abstract inside ``jit``, ``vmap`` or ``grad``)."""
    return isinstance(x, Tracer)


def _is_bool(x: Any) -> bool:
    if isinstance(x, bool | np.bool_):
        return True
    dtype = getattr(x, "dtype", None)
    return dtype is not None and np.dtype(dtype) == np.bool_


def check_unit_interval(fn: str, name: str, value: Any) -> float | jax.Array:
    """Returns ``value`` as a float in [0, 1], or as a scalar tracer left for run-time checks."""
    if _is_bool(value):
        raise ValueError(f"{fn}: {name} must be a number in [0, 1], not a bool, got {value!r}")
    if is_traced(value) or isinstance(value, jax.Array | np.ndarray):
        if np.ndim(value) != 0:
            raise ValueError(
                f"{fn}: {name} must be a scalar, got an array of shape {tuple(np.shape(value))}"
            )
        if not jnp.issubdtype(value.dtype, jnp.floating) and not jnp.issubdtype(
            value.dtype, jnp.integer
        ):
            raise ValueError(f"{fn}: {name} must be a real number, got dtype {value.dtype}")
        if is_traced(value):
            return cast(jax.Array, value)
        value = value.item()
    if not isinstance(value, numbers.Real):
        raise ValueError(f"{fn}: {name} must be a number in [0, 1], got {value!r}")
    value = float(value)
    if math.isnan(value) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{fn}: {name} must be in [0, 1], got {value!r}")
    return value


def check_positive(fn: str, name: str, value: Any) -> float:
    """Returns ``value`` as a finite positive float."""
    if _is_bool(value) or not isinstance(value, numbers.Real | np.ndarray | jax.Array):
        raise ValueError(f"{fn}: {name} must be a positive number, got {value!r}")
    if is_traced(value):
        raise ValueError(f"{fn}: {name} must be a concrete number, not a traced value")
    shape = tuple(getattr(value, "shape", ()))
    if shape:
        raise ValueError(f"{fn}: {name} must be a scalar, got shape {shape}")
    number = float(value)
    if not math.isfinite(number) or number <= 0:
        raise ValueError(f"{fn}: {name} must be a finite positive number, got {value!r}")
    return number


def check_count(fn: str, name: str, value: Any) -> int:
    """Returns ``value`` as a non-negative Python int (a NumPy integer scalar too, not an array)."""
    if _is_bool(value) or is_traced(value):
        raise ValueError(f"{fn}: {name} must be a non-negative integer, got {value!r}")
    if isinstance(value, np.ndarray | jax.Array):
        # A count is static: it sets the shape of the work, so it cannot be an array.
        raise ValueError(
            f"{fn}: {name} must be a non-negative integer, not an array, got {value!r}; "
            f"pass a Python int such as {name}=1"
        )
    try:
        count = operator.index(value)
    except TypeError:
        raise ValueError(f"{fn}: {name} must be a non-negative integer, got {value!r}") from None
    if count < 0:
        raise ValueError(f"{fn}: {name} must be a non-negative integer, got {value!r}")
    return count


def check_choice(fn: str, name: str, value: Any, choices: Sequence[str]) -> str:
    """Returns ``value`` if it is one of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        options = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{fn}: {name} must be one of {options}, got {value!r}")
    return value


def check_shape(fn: str, shape: Any, *, min_ndim: int = 2) -> tuple[int, ...]:
    """Returns ``shape`` as a tuple of non-negative ints with at least ``min_ndim`` entries."""
    if isinstance(shape, int | np.integer) or not isinstance(shape, Sequence | np.ndarray):
        raise ValueError(f"{fn}: shape must be a sequence of integers, got {shape!r}")
    dims = []
    for dim in shape:
        if _is_bool(dim):
            raise ValueError(f"{fn}: shape must hold integers, got {dim!r} in {tuple(shape)}")
        try:
            size = operator.index(dim)
        except TypeError:
            raise ValueError(
                f"{fn}: shape must hold integers, got {dim!r} in {tuple(shape)}"
            ) from None
        if size < 0:
            raise ValueError(
                f"{fn}: shape must hold non-negative integers, got {size} in {tuple(shape)}"
            )
        dims.append(size)
    if len(dims) < min_ndim:
        raise ValueError(f"{fn}: shape must have at least {min_ndim} dimensions, got {tuple(dims)}")
    return tuple(dims)


def _axes(fn: str, name: str, axis: Any, ndim: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    items = (axis,) if isinstance(axis, int | np.integer) else axis
    if not isinstance(items, Sequence) or any(_is_bool(a) for a in items):
        raise ValueError(f"{fn}: {name} must be an int or a sequence of ints, got {axis!r}")
    axes = []
    for a in items:
        try:
            index = operator.index(a)
        except TypeError:
            raise ValueError(
                f"{fn}: {name} must be an int or a sequence of ints, got {axis!r}"
            ) from None
        if not -ndim <= index < ndim:
            raise ValueError(
                f"{fn}: {name}={axis!r} is out of range for a {ndim}-dimensional shape {shape}"
            )
        axes.append(index % ndim)
    if len(set(axes)) != len(axes):
        raise ValueError(f"{fn}: {name}={axis!r} names the same axis twice")
    return tuple(axes)


def check_axes(
    fn: str,
    shape: tuple[int, ...],
    in_axis: AxisLike,
    out_axis: AxisLike,
    batch_axis: AxisLike,
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """Normalises the three axis arguments against ``shape``; they must be disjoint."""
    ndim = len(shape)
    ins = _axes(fn, "in_axis", in_axis, ndim, shape)
    outs = _axes(fn, "out_axis", out_axis, ndim, shape)
    batch = _axes(fn, "batch_axis", batch_axis, ndim, shape)
    if not ins:
        raise ValueError(f"{fn}: in_axis must name at least one axis, got {in_axis!r}")
    if not outs:
        raise ValueError(f"{fn}: out_axis must name at least one axis, got {out_axis!r}")
    if set(ins) & set(outs):
        raise ValueError(
            f"{fn}: in_axis and out_axis must differ, got in_axis={in_axis!r}, "
            f"out_axis={out_axis!r} for shape {shape}"
        )
    for name, axes in (("in_axis", ins), ("out_axis", outs)):
        if set(axes) & set(batch):
            raise ValueError(
                f"{fn}: batch_axis and {name} must differ, got batch_axis={batch_axis!r}, "
                f"{name}={axes!r} for shape {shape}"
            )
    return ins, outs, batch


def check_axis_arg(fn: str, name: str, axis: Any) -> int | tuple[int, ...]:
    """Checks the form of an axis argument at factory time (its range is checked per call)."""
    if isinstance(axis, int | np.integer) and not _is_bool(axis):
        return int(axis)
    if (
        isinstance(axis, Sequence)
        and not isinstance(axis, str)
        and all(isinstance(a, int | np.integer) and not _is_bool(a) for a in axis)
    ):
        return tuple(int(a) for a in axis)
    raise ValueError(f"{fn}: {name} must be an int or a sequence of ints, got {axis!r}")


def check_dtype(fn: str, dtype: Any, *, allow_complex: bool = False) -> np.dtype:
    """Returns the canonical floating (or, if allowed, complex) dtype JAX will produce."""
    if dtype is None:
        return np.dtype(jnp.result_type(float))
    try:
        requested = jnp.dtype(dtype)
    except TypeError:
        raise ValueError(f"{fn}: dtype must be a floating dtype, got {dtype!r}") from None
    if jnp.issubdtype(requested, jnp.complexfloating):
        if not allow_complex:
            raise ValueError(
                f"{fn}: dtype must be a real floating dtype, got {requested.name}; "
                "for complex weights use sparsify() with a complex base initializer"
            )
    elif not jnp.issubdtype(requested, jnp.floating):
        raise ValueError(f"{fn}: dtype must be a floating dtype, got {requested.name}")
    return np.dtype(jax.dtypes.canonicalize_dtype(requested))


def check_key(fn: str, key: Any) -> jax.Array:
    """Returns ``key`` as a single typed key; raw ``uint32`` keys are wrapped."""
    dtype = getattr(key, "dtype", None)
    if dtype is None:
        raise ValueError(f"{fn}: key must be a JAX PRNG key, got {type(key).__name__} {key!r}")
    if jnp.issubdtype(dtype, jax.dtypes.prng_key):
        if key.ndim != 0:
            raise ValueError(
                f"{fn}: key must be a single key, got a key array of shape {key.shape}; "
                "use jax.vmap to initialise with a batch of keys"
            )
        return key
    if np.dtype(dtype) != np.uint32:
        raise ValueError(f"{fn}: key must be a JAX PRNG key, got an array of dtype {dtype}")
    raw_shape = jax.eval_shape(lambda: jax.random.key_data(jax.random.key(0))).shape
    if tuple(key.shape) != tuple(raw_shape):
        raise ValueError(
            f"{fn}: key must be a single key of shape {raw_shape}, got shape {tuple(key.shape)}; "
            "use jax.vmap to initialise with a batch of keys"
        )
    return jax.random.wrap_key_data(jnp.asarray(key))
