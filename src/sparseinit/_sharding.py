"""Placing the result on devices: ``out_sharding`` and the sharding of intermediate arrays.

Every array the initializer builds is constrained to the requested layout, so that under
``jit`` each device computes only its own shard: random bits are generated per shard (JAX's
partitionable threefry), and the mask's per-step gather and scatter are partitioned along the
sharded axes. No device holds the whole array.

Meshes come with two kinds of axes. ``Auto`` axes (the compiler propagates shardings) take
``with_sharding_constraint``; ``Explicit`` axes (the default of ``jax.make_mesh``, where the
sharding is part of each array's type) refuse it. The builder therefore runs with every axis
switched to ``Auto`` (:func:`run_auto`), constrains its intermediates there, and hands the
result back with the requested sharding in its type.
"""

from collections.abc import Callable
from typing import Any

import jax
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec, Sharding

from sparseinit._layout import Layout


def check_sharding(fn: str, out_sharding: Any) -> Any:
    """Accepts ``None``, a ``jax.sharding.Sharding`` or a ``PartitionSpec``."""
    if out_sharding is None or isinstance(out_sharding, Sharding | PartitionSpec):
        return out_sharding
    raise ValueError(
        f"{fn}: out_sharding must be a NamedSharding, a PartitionSpec or None, got {out_sharding!r}"
    )


def _auto(sharding: Any) -> Any:
    # The same placement on a mesh whose axes are all Auto: what with_sharding_constraint
    # accepts inside run_auto. A PartitionSpec refers to the (already Auto) context mesh.
    if not isinstance(sharding, NamedSharding) or not isinstance(sharding.mesh, Mesh):
        return sharding
    mesh = sharding.mesh
    if all(t == AxisType.Auto for t in mesh.axis_types):
        return sharding
    auto = Mesh(mesh.devices, mesh.axis_names, axis_types=(AxisType.Auto,) * len(mesh.axis_names))
    return NamedSharding(auto, sharding.spec, memory_kind=sharding.memory_kind)


def run_auto(sharding: Any, fn: Callable[[], jax.Array]) -> jax.Array:
    """Runs ``fn()`` with every mesh axis ``Auto`` and returns its result placed as ``sharding``.

    With an ``Explicit`` mesh (from ``sharding`` or the context set by ``jax.set_mesh``) this
    is ``jax.sharding.auto_axes``: inside, :func:`constrain` can steer the partitioner, and
    the result carries ``sharding`` in its type. With ``Auto`` axes, or no sharding, it is
    ``fn()``.
    """
    if sharding is None:
        return fn()
    # auto_axes's overloads (decorator or call) are more than the type checker follows.
    return jax.sharding.auto_axes(fn, out_sharding=sharding)()  # pyright: ignore[reportCallIssue]


def constrain(x: jax.Array, sharding: Any) -> jax.Array:
    """``with_sharding_constraint`` inside :func:`run_auto`; lets ``None`` through."""
    if sharding is None:
        return x
    return jax.lax.with_sharding_constraint(x, _auto(sharding))


def rows_sharding(sharding: Any, layout: Layout) -> Any:
    """The sharding of the ``(neurons, fan_in)`` rows view that matches ``sharding``.

    Only defined where the rows view is a plain transpose (a dense kernel); elsewhere XLA
    propagates the output's sharding by itself and ``None`` is returned.
    """
    if not layout.is_plain_transpose:
        return None
    if isinstance(sharding, NamedSharding):
        spec, mesh = sharding.spec, sharding.mesh
    elif isinstance(sharding, PartitionSpec):
        spec, mesh = sharding, None
    else:
        return None
    entries = tuple(spec) + (None,) * (len(layout.shape) - len(spec))
    rows_spec = PartitionSpec(entries[layout.neuron_axes[0]], entries[layout.fan_axes[0]])
    return rows_spec if mesh is None else NamedSharding(mesh, rows_spec)
