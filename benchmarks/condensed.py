"""A layer's forward and backward passes on a condensed kernel, against dense and masked ones.

Three ways to hold a sparse ``(in, out)`` Dense kernel ``W`` and compute ``y = x @ W``:

* **dense**: ``x @ W`` on a dense kernel (``lecun_uniform``): the baseline of every ratio;
* **condensed**: ``x @ c`` for ``c = sparseinit.sparse(s).condensed(key, shape)``, the kept
  weights only (``c.values``) and their rows (``c.indices``), ``(k, out)`` each;
* **masked**: ``x @ (W * mask)`` on a dense kernel and its support, as one keeps the zeros of a
  sparse initialisation fixed in training; its gradient is masked by the product.

For each, three jitted programs on a batch ``x`` of ``(batch, in)``, the loss being
``½ ‖x @ W‖² / batch``:

* **forward**: ``x @ W``;
* **forward + backward**: the loss and its gradient with respect to the trainable weights;
* **streaming step**: the gradient ``g``, an eligibility trace ``z = γλ z + g`` and the update
  ``w += α δ z`` of streaming TD(λ) (``δ`` an argument, as computed from the next state),

and the bytes of the trainable weights, the non-trainable ones (indices, mask) and the state of
``optax.adam`` (``mu`` and ``nu``) for the trainable ones.
"""

import dataclasses
import math
from collections.abc import Callable, Iterator
from typing import Any

import jax
import jax.numpy as jnp

import sparseinit
from benchmarks.measure import Warm, fmt_shape, time_warm

SHAPES = ((1024, 128), (1024, 1024), (4096, 4096))
SPARSITIES = (0.9, 0.99)
BATCHES = (1, 32, 256)
KINDS = ("dense", "condensed", "masked")
OPS = ("forward", "backward", "stream")
# The streaming step's trace decay (γλ), step size (α) and TD error (δ).
TRACE_DECAY = 0.99 * 0.8
STEP_SIZE = 1e-3
TD_ERROR = 0.5


def available() -> bool:
    """Whether this sparseinit has condensed kernels."""
    return hasattr(sparseinit, "Condensed")


# ---- the three kernels -------------------------------------------------------------------
def with_values(c: Any, values: jax.Array) -> Any:
    """The condensed kernel ``c`` with other kept values, its indices and structure unchanged."""
    leaves, treedef = jax.tree.flatten(c)
    return jax.tree.unflatten(treedef, [values if x is c.values else x for x in leaves])


@dataclasses.dataclass(frozen=True)
class Kernel:
    """How one kind of kernel computes ``x @ W`` and which of its parts are trained."""

    params: Any
    apply: Callable[[Any, jax.Array], jax.Array]
    trainable: Callable[[Any], jax.Array]
    replace: Callable[[Any, jax.Array], Any]

    def frozen_bytes(self) -> int:
        return nbytes(self.params) - nbytes(self.trainable(self.params))


def make_kernel(kind: str, key: jax.Array, shape: tuple[int, int], sparsity: float) -> Kernel:
    if kind == "dense":
        w = jax.nn.initializers.lecun_uniform()(key, shape, jnp.float32)
        return Kernel(w, lambda w, x: x @ w, lambda w: w, lambda w, v: v)
    init = sparseinit.sparse(sparsity)
    if kind == "condensed":
        c = init.condensed(key, shape, jnp.float32)
        return Kernel(c, lambda c, x: x @ c, lambda c: c.values, with_values)
    if kind == "masked":
        params = (init(key, shape, jnp.float32), init.mask(key, shape))
        return Kernel(
            params,
            lambda p, x: x @ (p[0] * p[1]),
            lambda p: p[0],
            lambda p, v: (v, p[1]),
        )
    raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")


def _loss(kernel: Kernel, params: Any, x: jax.Array) -> jax.Array:
    y = kernel.apply(params, x)
    return 0.5 * jnp.sum(y * y) / x.shape[0]


def _gradient(kernel: Kernel, params: Any, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    # allow_int: a condensed kernel's indices and a mask are inputs without a gradient.
    loss, grads = jax.value_and_grad(lambda p: _loss(kernel, p, x), allow_int=True)(params)
    return loss, kernel.trainable(grads)


def program(kernel: Kernel, op: str, x: jax.Array) -> Callable[[jax.Array], Any]:
    """One jitted program, as a function of an (unused) key for :func:`time_warm`."""
    if op == "forward":
        fn = jax.jit(kernel.apply)
        return lambda _key: fn(kernel.params, x)
    if op == "backward":
        fn = jax.jit(lambda p, x: _gradient(kernel, p, x))
        return lambda _key: fn(kernel.params, x)
    if op == "stream":

        def step(params: Any, z: jax.Array, x: jax.Array, delta: jax.Array) -> tuple[Any, Any]:
            _, g = _gradient(kernel, params, x)
            z = TRACE_DECAY * z + g
            w = kernel.trainable(params) + STEP_SIZE * delta * z
            return kernel.replace(params, w), z

        fn = jax.jit(step)
        z = jnp.zeros_like(kernel.trainable(kernel.params))
        delta = jnp.float32(TD_ERROR)
        return lambda _key: fn(kernel.params, z, x, delta)
    raise ValueError(f"op must be one of {OPS}, got {op!r}")


# ---- bytes -------------------------------------------------------------------------------
def nbytes(tree: Any) -> int:
    return sum(math.prod(x.shape) * x.dtype.itemsize for x in jax.tree.leaves(tree))


def training_bytes(kernel: Kernel) -> int:
    """Bytes of the kernel (trainable and not) and of Adam's state for its trainable part."""
    import optax  # flax's dependency; imported here so that the rest runs without it

    state = jax.eval_shape(optax.adam(1e-3).init, kernel.trainable(kernel.params))
    return nbytes(kernel.params) + nbytes(state)


# ---- every figure ------------------------------------------------------------------------
@dataclasses.dataclass
class Case:
    """The warm times of one shape, sparsity and batch, by kernel kind and program."""

    shape: tuple[int, int]
    sparsity: float
    batch: int
    warm: dict[tuple[str, str], Warm]

    def ms(self, kind: str, op: str) -> float | None:
        warm = self.warm.get((kind, op))
        return warm.median_ms if warm else None


@dataclasses.dataclass
class Results:
    cases: list[Case]
    # Bytes of kernel + Adam state, by (shape, sparsity) and kind.
    bytes: dict[tuple[tuple[int, int], float], dict[str, int]]


def measure(
    shapes: tuple[tuple[int, int], ...],
    sparsities: tuple[float, ...],
    batches: tuple[int, ...],
    *,
    repeats: int,
    target_seconds: float,
    keys: Iterator[jax.Array],
    progress: Callable[[str], None],
) -> Results:
    """Every program of every kind at each shape and batch, interleaved within a shape and batch.

    The dense kernel does not depend on the sparsity: it is timed once per shape and batch, and
    its figures stand beside both sparsities'.
    """
    results = Results([], {})
    for shape in shapes:
        key = next(keys)
        kernels = {("dense", None): make_kernel("dense", key, shape, 0.0)}
        for sparsity in sparsities:
            for kind in KINDS[1:]:
                kernels[kind, sparsity] = make_kernel(kind, key, shape, sparsity)
            results.bytes[shape, sparsity] = {
                kind: training_bytes(kernels[kind, None if kind == "dense" else sparsity])
                for kind in KINDS
            }
        for batch in batches:
            progress(f"condensed {fmt_shape(shape)} batch {batch}")
            x = jax.random.normal(next(keys), (batch, shape[0]), jnp.float32)
            fns = {
                (kind, sparsity, op): program(kernel, op, x)
                for (kind, sparsity), kernel in kernels.items()
                for op in OPS
            }
            warm = time_warm(fns, repeats, target_seconds, keys)
            for sparsity in sparsities:
                mine = {(kind, op): w for (kind, s, op), w in warm.items() if s in (None, sparsity)}
                results.cases.append(Case(shape, sparsity, batch, mine))
    # Measured by shape and batch; reported by shape, sparsity and batch.
    results.cases.sort(key=lambda c: (shapes.index(c.shape), c.sparsity, c.batch))
    return results
