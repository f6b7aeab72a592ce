"""Keeping a sparsity pattern fixed during training: an optax gradient transformation.

An ordinary optimizer moves the zeros that a sparse initializer made: the gradient of a zero
weight is not zero, and weight decay or momentum move it too. :func:`keep_sparsity` wraps any
optax optimizer so that the weights chosen by a mask stay exactly zero, step after step.

Importing this module imports optax; ``import sparseinit`` does not.
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Bool, PyTree

from sparseinit._checks import check_mask, check_update_params

__all__ = ["KeepSparsityState", "keep_sparsity", "kernel_masks"]

#: A tree of masks: a boolean array (``True`` where the weight may train) or ``None``
#: (the parameter is left to the wrapped optimizer) per parameter. ``None`` is an empty
#: subtree to JAX, so the annotation names only the arrays.
Masks = PyTree[Bool[Array, "..."]]


class KeepSparsityState(NamedTuple):
    """The state of :func:`keep_sparsity`.

    Attributes:
        inner: the wrapped optimizer's state.
        masks: the masks in force: ``True`` where a weight trains, ``False`` where it is held
            at zero, ``None`` for a parameter that is not masked.
    """

    inner: optax.OptState
    masks: Any


def _is_none(x: Any) -> bool:
    return x is None


def kernel_masks(params: PyTree[Array], *, min_ndim: int = 2) -> Masks:
    """The support of every kernel: ``params != 0`` for arrays of ``min_ndim`` dimensions or more.

    Biases and other parameters with fewer dimensions get ``None`` (not masked): a bias that
    starts at zero must still train.

    Args:
        params: a pytree of arrays (a Flax ``params`` dict, an ``nnx.State``, ...).
        min_ndim: the smallest number of dimensions of a masked parameter.

    Returns:
        A tree of the same structure with a boolean array or ``None`` per parameter.

    Examples:
        >>> import jax.numpy as jnp
        >>> from sparseinit.optax import kernel_masks
        >>> masks = kernel_masks({"kernel": jnp.array([[0.0, 1.0]]), "bias": jnp.zeros(2)})
        >>> masks["kernel"].tolist(), masks["bias"]
        ([[False, True]], None)
    """
    return jax.tree.map(lambda p: p != 0 if jnp.ndim(p) >= min_ndim else None, params)


def _mask_tree(masks: Any, fn: Callable[..., Any], *trees: Any) -> Any:
    # The masks' structure leads, so that a None mask is a leaf that leaves its parameter be.
    def apply(mask: Any, *leaves: Any) -> Any:
        return leaves[0] if mask is None else fn(mask, *leaves)

    return jax.tree.map(apply, masks, *trees, is_leaf=_is_none)


def keep_sparsity(
    inner: optax.GradientTransformation,
    masks: Masks | Callable[[PyTree[Array]], Masks] | None = None,
) -> optax.GradientTransformationExtraArgs:
    """Wraps ``inner`` so that masked-out weights stay exactly zero under every update.

    ``init(params)`` fixes the masks: by default from the initial parameters themselves
    (:func:`kernel_masks`: every zero of every kernel is held at zero, biases are free), or
    from ``masks`` (a tree, or a function of the parameters that returns one). Each
    ``update(grads, state, params)`` then

    1. zeroes the masked gradients before ``inner`` sees them, so the wrapped optimizer's
       moments stay zero there, and
    2. replaces the final update at masked positions by ``-params``, so that
       ``params + update`` is exactly ``0`` there whatever ``inner`` did (weight decay,
       momentum, schedules). A weight that is zero gets an update of zero.

    The update therefore needs ``params``. Extra keyword arguments of the update (``value=``
    for ``optax.contrib.reduce_on_plateau``, ...) go to ``inner`` unchanged, as optax's own
    wrappers pass them. A mask that marks a weight that is not zero
    (explicit masks for parameters drawn dense, say) sets that weight to exactly zero at the
    first update and holds it there: pruning at the first step, not at ``init``.

    Args:
        inner: any optax gradient transformation (``optax.adamw(...)``, a chain, ...).
        masks: ``None`` to take the masks from the parameters given to ``init``; a tree of the
            parameters' structure with a boolean array (``True`` where a weight trains) or
            ``None`` (not masked) per parameter; or a function ``params -> masks``.

    Returns:
        An ``optax.GradientTransformationExtraArgs`` whose state is a
        :class:`KeepSparsityState`.

    Raises:
        ValueError: from ``update`` when ``params`` is not given, or from ``init`` when a mask's
            shape is not its parameter's.

    Examples:
        >>> import jax, jax.numpy as jnp, optax, sparseinit
        >>> from sparseinit.optax import keep_sparsity
        >>> params = {"w": sparseinit.sparse(0.5)(jax.random.key(0), (4, 3)), "b": jnp.zeros(3)}
        >>> opt = keep_sparsity(optax.adamw(0.1, weight_decay=0.1))
        >>> state = opt.init(params)
        >>> grads = jax.tree.map(jnp.ones_like, params)
        >>> updates, state = opt.update(grads, state, params)
        >>> new = optax.apply_updates(params, updates)
        >>> int((new["w"] == 0).sum()), int((new["b"] == 0).sum())  # 2 zeros per column
        (6, 0)
    """
    inner = optax.with_extra_args_support(inner)

    def init_fn(params: PyTree[Array]) -> KeepSparsityState:
        if masks is None:
            chosen = kernel_masks(params)
        elif callable(masks):
            chosen = masks(params)
        else:
            chosen = masks

        chosen = jax.tree.map(
            lambda m, p: None if m is None else check_mask(m, p), chosen, params, is_leaf=_is_none
        )
        return KeepSparsityState(inner=inner.init(params), masks=chosen)

    def update_fn(
        updates: PyTree[Array],
        state: KeepSparsityState,
        params: PyTree[Array] | None = None,
        **extra_args: Any,
    ) -> tuple[PyTree[Array], KeepSparsityState]:
        check_update_params(params)

        def zero_masked(mask: Any, grad: Any) -> Any:
            return jnp.where(mask, grad, jnp.zeros_like(grad))

        def hold(mask: Any, update: Any, param: Any) -> Any:
            # -param, not 0: param + (-param) is exactly 0 for every finite param.
            return jnp.where(mask, update, -param.astype(update.dtype))

        grads = _mask_tree(state.masks, zero_masked, updates)
        inner_updates, inner_state = inner.update(grads, state.inner, params, **extra_args)
        final = _mask_tree(state.masks, hold, inner_updates, params)
        return final, KeepSparsityState(inner=inner_state, masks=state.masks)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)  # type: ignore[arg-type]
