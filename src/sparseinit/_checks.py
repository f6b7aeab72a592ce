"""Checks of the arguments at the library's boundary.

Factories check hyper-parameters once; calls check shape, size, axes, dtype, key and sharding;
a traced sparsity is checked inside ``jit`` (:func:`check_traced_sparsity`); the sparsity
report checks its axes and ``keep_sparsity`` its masks here too. A base initializer is checked
beside the code that calls it (:mod:`sparseinit._wrapped_init`). Every failure is a
``ValueError`` whose message names the function, the argument and the value, for example
``sparse: sparsity must be in [0, 1], got 1.2``. Integers are parsed in one place
(:func:`_as_int`), axis arguments in another (:func:`parse_axis`), at factory and call time
alike.
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
from jax.experimental import checkify
from jax.sharding import PartitionSpec, Sharding

# The accepted values of the string arguments; _count and _values implement each.
ROUNDINGS = ("ceil", "round", "floor")
DISTRIBUTIONS = ("uniform", "normal", "truncated_normal")


def is_traced(x: Any) -> bool:
    """Whether ``x`` is a JAX tracer (abstract inside ``jit``, ``vmap`` or ``grad``)."""
    return isinstance(x, Tracer)


def _is_bool(x: Any) -> bool:
    if isinstance(x, bool | np.bool_):
        return True
    dtype = getattr(x, "dtype", None)
    return dtype is not None and np.dtype(dtype) == np.bool_


def _as_int(x: Any) -> int | None:
    # The one integer parser: a Python or NumPy integer (anything with __index__), not a bool.
    if _is_bool(x):
        return None
    try:
        return operator.index(x)
    except TypeError:
        return None


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
    count = _as_int(value)
    if count is None or count < 0:
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
        size = _as_int(dim)
        if size is None:
            raise ValueError(f"{fn}: shape must hold integers, got {dim!r} in {tuple(shape)}")
        if size < 0:
            raise ValueError(
                f"{fn}: shape must hold non-negative integers, got {size} in {tuple(shape)}"
            )
        dims.append(size)
    if len(dims) < min_ndim:
        raise ValueError(f"{fn}: shape must have at least {min_ndim} dimensions, got {tuple(dims)}")
    return tuple(dims)


def parse_axis(fn: str, name: str, axis: Any) -> int | tuple[int, ...]:
    """The form of an axis argument: an int, or a tuple of ints (not bools, not a string).

    Factories store what this returns; calls normalise it against the shape with
    :func:`check_axes`, which parses it again, so the two agree on every form.
    """
    if _is_axis(axis):
        return operator.index(axis)
    if isinstance(axis, Sequence) and not isinstance(axis, str) and all(map(_is_axis, axis)):
        return tuple(operator.index(a) for a in axis)
    raise ValueError(f"{fn}: {name} must be an int or a sequence of ints, got {axis!r}")


def _is_axis(x: Any) -> bool:
    # A Python or NumPy integer, not a bool, and not an array that happens to hold one.
    return isinstance(x, int | np.integer) and _as_int(x) is not None


def check_axis_args(fn: str, in_axis: Any, out_axis: Any, batch_axis: Any) -> dict[str, Any]:
    """The three axis arguments of a factory, each in the form :func:`parse_axis` gives."""
    return {
        "in_axis": parse_axis(fn, "in_axis", in_axis),
        "out_axis": parse_axis(fn, "out_axis", out_axis),
        "batch_axis": parse_axis(fn, "batch_axis", batch_axis),
    }


def _axes(fn: str, name: str, axis: Any, ndim: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    parsed = parse_axis(fn, name, axis)
    axes = []
    for index in (parsed,) if isinstance(parsed, int) else parsed:
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
    in_axis: Any,
    out_axis: Any,
    batch_axis: Any,
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


def check_traced_sparsity(fn: str, sparsity: jax.Array) -> jax.Array:
    """Whether a traced sparsity is in [0, 1]; reported through ``checkify`` when checkified.

    Inside ``jit`` nothing can raise: the caller poisons the result where this is ``False``.
    """
    valid = (sparsity >= 0) & (sparsity <= 1)
    checkify.debug_check(
        valid, f"{fn}: sparsity must be in [0, 1], got {{sparsity}}", sparsity=sparsity
    )
    return valid


def check_bool(fn: str, name: str, value: Any) -> bool:
    """Returns ``value`` as a Python bool; only ``True`` and ``False`` are accepted."""
    if not isinstance(value, bool | np.bool_):
        raise ValueError(f"{fn}: {name} must be True or False, got {value!r}")
    return bool(value)


def check_rounding(fn: str, rounding: Any) -> str:
    """Returns ``rounding`` if it is one of :data:`ROUNDINGS`."""
    return check_choice(fn, "rounding", rounding, ROUNDINGS)


def check_dtype_arg(fn: str, dtype: Any) -> str | None:
    """A factory's default dtype, stored by name (readable in ``repr``, hashable), or ``None``."""
    if dtype is None:
        return None
    return np.dtype(check_dtype(fn, dtype)).name


def check_size(fn: str, shape: tuple[int, ...], fan_in: int, num_neurons: int, limit: int) -> None:
    """Checks that the sampler can index the fan-in and the neurons of ``shape``."""
    for what, size in (("fan-in", fan_in), ("number of neurons", num_neurons)):
        if size > limit:
            raise ValueError(
                f"{fn}: shape {shape} has a {what} of {size:,}, above the largest the sampler "
                f"indexes, {limit:,} (2**31 - 1)"
            )


def check_sharding(fn: str, out_sharding: Any) -> Any:
    """Accepts ``None``, a ``jax.sharding.Sharding`` or a ``PartitionSpec``."""
    if out_sharding is None or isinstance(out_sharding, Sharding | PartitionSpec):
        return out_sharding
    raise ValueError(
        f"{fn}: out_sharding must be a NamedSharding, a PartitionSpec or None, got {out_sharding!r}"
    )


def check_report_axes(name: str, value: Any, path: str, shape: tuple[int, ...]) -> tuple[int, ...]:
    """The report's ``out_axis`` or ``batch_axis`` for the parameter at ``path``, normalised."""
    items = (value,) if isinstance(value, int | np.integer) else value
    axes = []
    try:
        for a in items:
            index = _as_int(a)
            if index is None:
                raise TypeError
            axes.append(index)
    except TypeError:
        raise ValueError(
            f"sparsity_report: {name} must be an int or a sequence of ints, got {value!r}"
        ) from None
    ndim = len(shape)
    if any(not -ndim <= a < ndim for a in axes):
        raise ValueError(
            f"sparsity_report: {name} must be an axis of {path} with shape {shape}, got {value}"
        )
    return tuple(a % ndim for a in axes)


def check_report_layout(
    path: str, shape: tuple[int, ...], outs: tuple[int, ...], batch: tuple[int, ...]
) -> None:
    """Checks that the report's neuron axes of a kernel are disjoint and leave a fan-in axis."""
    if not outs:
        raise ValueError(f"sparsity_report: out_axis must name at least one axis of {path}")
    if set(outs) & set(batch):
        raise ValueError(
            f"sparsity_report: out_axis and batch_axis must differ, got out_axis={outs} and "
            f"batch_axis={batch} for {path} with shape {shape}"
        )
    if set(outs) | set(batch) == set(range(len(shape))):
        raise ValueError(
            f"sparsity_report: out_axis={outs} and batch_axis={batch} leave no fan-in axis in "
            f"{path} with shape {shape}"
        )


def check_mask(mask: Any, param: Any) -> jax.Array:
    """A mask of ``keep_sparsity`` as a boolean array of its parameter's shape."""
    mask = jnp.asarray(mask, bool)
    if mask.shape != jnp.shape(param):
        raise ValueError(
            f"keep_sparsity: masks must have the shape of their parameter, got "
            f"{mask.shape} for a parameter of shape {jnp.shape(param)}"
        )
    return mask


def check_update_params(params: Any) -> None:
    """``keep_sparsity``'s update holds weights at zero through ``params``: it needs them."""
    if params is None:
        raise ValueError(
            "keep_sparsity: update needs params (call opt.update(grads, state, params)), "
            "got params=None"
        )
