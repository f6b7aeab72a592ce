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

import math
from collections.abc import Callable
from typing import Any

import jax
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

from sparseinit._layout import Layout


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


def _merged(entries: tuple[Any, ...], axes: tuple[int, ...]) -> tuple[bool, Any]:
    # The sharding of axes merged row-major into one: that of the major axis when the others
    # are whole (each device's block stays contiguous); otherwise not expressible.
    major, *minor = (entries[a] for a in axes)
    if any(e is not None for e in minor):
        return False, None
    return True, major


def view_sharding(sharding: Any, layout: Layout) -> Any:
    """The sharding of the layout's 2-D view that matches ``sharding`` of the full array.

    ``None`` where it cannot be expressed (an axis merged into the view is sharded behind a
    major axis); XLA then propagates the output's sharding by itself.
    """
    if isinstance(sharding, NamedSharding):
        spec, mesh = sharding.spec, sharding.mesh
    elif isinstance(sharding, PartitionSpec):
        spec, mesh = sharding, None
    else:
        return None
    entries = tuple(spec) + (None,) * (len(layout.shape) - len(spec))
    groups = (layout.neuron_axes, layout.fan_axes)
    if layout.neurons_last:
        groups = groups[::-1]
    merged = [_merged(entries, axes) for axes in groups]
    if not all(ok for ok, _ in merged):
        return None
    view_spec = PartitionSpec(*(entry for _, entry in merged))
    return view_spec if mesh is None else NamedSharding(mesh, view_spec)


def fan_in_shards(placement: Any, layout: Layout) -> int:
    """How many pieces the fan-in dimension of the 2-D view is split into by ``placement``.

    ``placement`` is what :func:`view_sharding` returned; 1 when it leaves the fan-in whole or
    is unknown (``None``: XLA places the view).
    """
    if isinstance(placement, NamedSharding):
        spec, sizes = placement.spec, dict(placement.mesh.shape)
    elif isinstance(placement, PartitionSpec):
        spec, sizes = placement, dict(jax.sharding.get_abstract_mesh().shape)
    else:
        return 1
    fan_dim = 1 - layout.neuron_dim
    entry = tuple(spec)[fan_dim] if len(spec) > fan_dim else None
    names = () if entry is None else (entry,) if isinstance(entry, str) else tuple(entry)
    return math.prod(int(sizes.get(name, 1)) for name in names)
