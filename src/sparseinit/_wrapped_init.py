"""The base initializer of ``sparsify``: how it is named, called and checked.

``sparsify`` masks the values of another initializer. Before anything is built, the base
initializer's output is found by ``jax.eval_shape`` (nothing runs): it must be an array of the
requested shape, and of the requested dtype, or, with no dtype given, of the dtype the base
initializer returns by default, which then becomes the result's dtype. A readable name of jax's
and Flax's built-in initializers (``variance_scaling(2.0, 'fan_in', 'truncated_normal')``) goes
into ``repr``, so that a logged configuration says what ran.
"""

import dataclasses
import functools
import inspect
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

# Factories of jax.nn.initializers (re-exported by flax.linen.initializers and
# flax.nnx.initializers) and Flax's own: each returns an initializer and is not one.
_FACTORIES = frozenset(
    {
        "constant",
        "uniform",
        "normal",
        "truncated_normal",
        "variance_scaling",
        "glorot_uniform",
        "glorot_normal",
        "xavier_uniform",
        "xavier_normal",
        "lecun_uniform",
        "lecun_normal",
        "he_uniform",
        "he_normal",
        "kaiming_uniform",
        "kaiming_normal",
        "orthogonal",
        "delta_orthogonal",
        "zeros_init",
        "ones_init",
    }
)
_BUILTIN_MODULES = ("jax.nn.initializers", "jax._src.nn.initializers", "flax.")

# What each of jax's factories closes over, in the order of its positional parameters, and
# the defaults that are left out of the name. The dtype is the inner function's default.
_PARAMETERS: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {
    "constant": (("value",), {}),
    "uniform": (("scale",), {}),
    "normal": (("stddev",), {}),
    "truncated_normal": (("stddev",), {"lower": -2.0, "upper": 2.0}),
    "variance_scaling": (
        ("scale", "mode", "distribution"),
        {"in_axis": -2, "out_axis": -1, "batch_axis": ()},
    ),
    "orthogonal": (("scale",), {"column_axis": -1}),
    "delta_orthogonal": (("scale",), {"column_axis": -1}),
}


def _is_builtin(fn: Any) -> bool:
    module = getattr(fn, "__module__", None) or ""
    return module.startswith(_BUILTIN_MODULES)


def uncalled_factory(fn: Any) -> str | None:
    """The name of a built-in initializer factory passed where an initializer belongs."""
    name = getattr(fn, "__name__", None)
    qualname = getattr(fn, "__qualname__", "") or ""
    if name in _FACTORIES and "<locals>" not in qualname and _is_builtin(fn):
        return name
    return None


def _value_text(value: Any) -> str:
    if isinstance(value, jax.Array | np.ndarray) and np.size(value) == 1:
        return repr(np.asarray(value).item())
    if isinstance(value, np.dtype | type):
        try:
            return repr(np.dtype(value).name)
        except TypeError:
            return repr(value)
    return repr(value)


def _builtin_name(fn: Any) -> str | None:
    factory = (getattr(fn, "__qualname__", "") or "").removesuffix(".<locals>.init")
    if factory not in _PARAMETERS or not _is_builtin(fn) or fn.__closure__ is None:
        return None
    try:
        closed = inspect.getclosurevars(fn).nonlocals
    except (TypeError, ValueError):
        return None
    positional, optional = _PARAMETERS[factory]
    if any(name not in closed for name in positional):
        return None
    parts = [_value_text(closed[name]) for name in positional]
    for name, default in optional.items():
        if name in closed and closed[name] != default:
            parts.append(f"{name}={_value_text(closed[name])}")
    dtype = (getattr(fn, "__defaults__", None) or (None,))[0]
    if dtype is not None:
        parts.append(f"dtype={_value_text(dtype)}")
    return f"{factory}({', '.join(parts)})"


def describe(fn: Callable[..., Any]) -> str:
    """A readable name of an initializer for ``repr``: its factory call, or its qualified name.

    Examples:
        >>> import jax
        >>> describe(jax.nn.initializers.he_normal())
        "variance_scaling(2.0, 'fan_in', 'truncated_normal')"
        >>> describe(jax.nn.initializers.normal(0.5, dtype=jax.numpy.bfloat16))
        "normal(0.5, dtype='bfloat16')"
        >>> describe(jax.nn.initializers.zeros)
        'jax.nn.initializers.zeros'
    """
    name = _builtin_name(fn)
    if name is not None:
        return name
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None)
    return f"{module}.{qualname}" if module and qualname else repr(fn)


def _takes_two_arguments(fn: Callable[..., Any]) -> bool:
    # A base initializer whose dtype parameter has no default must be given one.
    try:
        inspect.signature(fn).bind(None, None)
    except TypeError:
        return False
    except ValueError:  # no signature to read: call it as the protocol says it may be
        return True
    return True


@dataclasses.dataclass(frozen=True)
class BaseCall:
    """The base initializer, called with the result's dtype or, if none was given, without one.

    Attributes:
        init: the user's base initializer.
        pass_dtype: whether to pass the dtype; ``False`` lets the base use its own default.
    """

    init: Callable[..., Any]
    pass_dtype: bool

    def __call__(self, key: jax.Array, shape: tuple[int, ...], dtype: Any) -> Any:
        """``init(key, shape, dtype)``, or ``init(key, shape)`` without a dtype."""
        if self.pass_dtype:
            return self.init(key, shape, dtype)
        return self.init(key, shape)


@functools.cache
def _abstract_key() -> jax.ShapeDtypeStruct:
    return jax.eval_shape(lambda: jax.random.key(0))


def _probe(call: BaseCall, shape: tuple[int, ...], dtype: Any) -> tuple[Any, Any]:
    # The base's output, abstractly: (shape and dtype, None) or (None, the non-array it gave).
    odd: list[Any] = []

    def run(key: jax.Array) -> Any:
        out = call(key, shape, dtype)
        if isinstance(out, jax.Array | np.ndarray):
            return out
        odd.append(out)
        return None

    out = jax.eval_shape(run, _abstract_key())
    return (None, odd[0]) if odd else (out, None)


_probe_cached = functools.lru_cache(maxsize=512)(_probe)


def _call_text(call: BaseCall) -> str:
    return "base_init(key, shape, dtype)" if call.pass_dtype else "base_init(key, shape)"


def resolve(
    fn: str, base_init: Callable[..., Any], shape: tuple[int, ...], requested: np.dtype | None
) -> tuple[np.dtype, BaseCall]:
    """The result's dtype and how to call ``base_init``, checked by ``jax.eval_shape``.

    Args:
        fn: the public function's name, for messages.
        base_init: the user's base initializer.
        shape: the requested shape.
        requested: the requested dtype, already checked, or ``None`` for the base
            initializer's own default.

    Returns:
        ``(dtype, call)``: the canonical dtype of the result, and the call to build it with.

    Raises:
        ValueError: if ``base_init`` does not return an array of ``shape`` and of ``dtype``
            (or, with no dtype, a floating or complex array).
    """
    if requested is not None:
        call, call_dtype = BaseCall(base_init, True), requested
    elif _takes_two_arguments(base_init):
        call, call_dtype = BaseCall(base_init, False), None
    else:
        # JAX's default float, as for any initializer called without a dtype.
        requested = np.dtype(jnp.result_type(float))
        call, call_dtype = BaseCall(base_init, True), requested
    label = describe(base_init)
    try:
        try:
            out, odd = _probe_cached(call, shape, call_dtype)
        except TypeError as error:
            if not str(error).startswith("unhashable"):
                raise
            out, odd = _probe(call, shape, call_dtype)
    except TypeError as error:
        raise ValueError(
            f"{fn}: base_init={label} cannot be called as {_call_text(call)}: {error}; "
            "base_init must be an initializer (key, shape, dtype) -> array (if it is a "
            "factory of initializers, call it first)"
        ) from error
    if odd is not None:
        if callable(odd):
            factory = getattr(base_init, "__name__", None) or "the factory"
            raise ValueError(
                f"{fn}: base_init={label} returned a function, not an array, when called as "
                f"{_call_text(call)}: it is an initializer factory, not an initializer; "
                f"did you mean {factory}()?"
            )
        raise ValueError(
            f"{fn}: base_init={label} must return an array, got "
            f"{type(odd).__name__} {odd!r:.80} from {_call_text(call)}"
        )
    if tuple(out.shape) != shape:
        raise ValueError(
            f"{fn}: base_init={label} returned shape {tuple(out.shape)} for the requested shape "
            f"{shape}; an initializer must return an array of the shape it is given"
        )
    found = np.dtype(out.dtype)
    if requested is not None and found != requested:
        raise ValueError(
            f"{fn}: base_init={label} returned {found.name} when called with dtype "
            f"{requested.name}; an initializer must return the dtype it is given (convert "
            f"inside base_init, e.g. with .astype(dtype))"
        )
    if not jnp.issubdtype(found, jnp.inexact):
        raise ValueError(
            f"{fn}: base_init={label} returned {found.name} values; sparsify needs a floating "
            "or complex initializer (give the call a dtype such as jnp.float32)"
        )
    return np.dtype(jax.dtypes.canonicalize_dtype(found)), call


def check_base_init(fn: str, base_init: Any) -> Any:
    """Returns ``base_init`` if it is callable and not one of jax's factories left uncalled."""
    if not callable(base_init):
        raise ValueError(f"{fn}: base_init must be a callable initializer, got {base_init!r}")
    factory = uncalled_factory(base_init)
    if factory is not None:
        raise ValueError(
            f"{fn}: base_init must be an initializer, got the initializer factory "
            f"{describe(base_init)} itself; did you mean {factory}()?"
        )
    return base_init


def empty_dtype(
    base_init: Callable[..., Any], shape: tuple[int, ...], requested: np.dtype | None
) -> np.dtype:
    """The dtype of an empty result: the requested one, or the base initializer's default.

    Nothing is drawn for a zero-size shape, and jax's own initializers divide by the fan-in,
    so the base initializer is not run on the empty shape: its default dtype is read from its
    abstract output on the shape with each empty dimension made 1, or is JAX's default float
    where that fails too.
    """
    if requested is not None:
        return requested
    probe = tuple(max(d, 1) for d in shape)
    try:
        call = BaseCall(base_init, not _takes_two_arguments(base_init))
        out, odd = _probe(
            call, probe, np.dtype(jnp.result_type(float)) if call.pass_dtype else None
        )
    except Exception:  # any failure of the user's code: the default float, as jax's would be
        return np.dtype(jnp.result_type(float))
    if odd is not None or not jnp.issubdtype(out.dtype, jnp.inexact):
        return np.dtype(jnp.result_type(float))
    return np.dtype(jax.dtypes.canonicalize_dtype(out.dtype))
