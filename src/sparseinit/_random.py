"""Every random word of an initializer: threefry-2x32, written out as one elementwise computation.

Every random number of an initializer comes from the key it is given. For the default key type,
the words are hashed here with threefry-2x32 (Salmon et al. 2011, "Parallel random numbers: as
easy as 1, 2, 3": twenty rounds of addition, rotation and xor on pairs of 32-bit words, with a
key injection after every four), written out as one elementwise computation that XLA fuses with
the counters and with what consumes the words; JAX lowers the same hash on CPU as a loop over
its five blocks of rounds, which compiles and runs slower.

**Whose stream.** For a threefry key, sparseinit owns its stream: every word comes from the
key's two 32-bit words through the hash above, a fixed specification (a known-answer test pins
it), so a JAX release cannot change which weights a key gives. The layout of the counters
follows ``jax.random`` with ``jax_threefry_partitionable`` on (JAX's default): :func:`bits`
hashes each element's row-major index as :func:`jax.random.bits` does, and :func:`split` gives
what :func:`jax.random.split` gives, bit for bit (tests compare them with the running JAX);
:func:`words` hashes counters of the caller's own (the mask's proposals). For any other key
type, with the flag turned off, and for arrays of ``2**32`` elements or more, the words are
``jax.random``'s, and follow JAX's releases.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

_IMPL = "threefry2x32"
# The rotation distances of the rounds, alternating between two blocks of four (Salmon et al.,
# table 4, for 2x32), and the constant of the third key word.
_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_KEY_PARITY = np.uint32(0x1BD11BDA)
_BLOCKS = 5


def _partitionable() -> bool:
    # JAX's default since 0.5; should the flag go, its behaviour is the one that stays.
    flag = getattr(jax, "threefry_partitionable", None)
    return True if flag is None else bool(getattr(flag, "value", True))


def applies(key: jax.Array, size: int = 0) -> bool:
    """Whether the words of ``key`` for an array of ``size`` elements may be computed here."""
    return str(jax.random.key_impl(key)) == _IMPL and _partitionable() and size < 2**32


def hash_pairs(key: jax.Array, x0: jax.Array, x1: jax.Array) -> tuple[jax.Array, jax.Array]:
    """threefry-2x32 of the counter pairs ``(x0, x1)`` (``uint32`` arrays) under a scalar key."""
    # In lax operations with scalar operands (the key words, the constants), about 120 of them:
    # they trace in a fraction of the time that jax.numpy's broadcasting versions take.
    data = jax.random.key_data(key)
    k0, k1 = data[..., 0], data[..., 1]
    keys = (k0, k1, lax.bitwise_xor(lax.bitwise_xor(k0, k1), _KEY_PARITY))
    x0, x1 = lax.add(x0, keys[0]), lax.add(x1, keys[1])
    for block in range(_BLOCKS):
        for distance in _ROTATIONS[block % 2]:
            left = lax.shift_left(x1, np.uint32(distance))
            rotated = lax.bitwise_or(left, lax.shift_right_logical(x1, np.uint32(32 - distance)))
            x0 = lax.add(x0, x1)
            x1 = lax.bitwise_xor(x0, rotated)
        x0 = lax.add(x0, keys[(block + 1) % 3])
        x1 = lax.add(lax.add(x1, keys[(block + 2) % 3]), np.uint32(block + 1))
    return x0, x1


def _row_major_index(shape: tuple[int, ...]) -> jax.Array:
    # Each element's row-major index as uint32, from one iota per axis, which XLA's SPMD
    # partitioner splits across devices like any elementwise computation.
    index = jnp.zeros(shape, jnp.uint32)
    stride = 1
    for axis in reversed(range(len(shape))):
        index = index + lax.broadcasted_iota(jnp.uint32, shape, axis) * np.uint32(stride)
        stride *= shape[axis]
    return index


def bits(key: jax.Array, shape: tuple[int, ...], dtype: type = jnp.uint32) -> jax.Array:
    """``jax.random.bits(key, shape, dtype)`` for ``uint32`` or ``uint64``."""
    if not applies(key, math.prod(shape)):
        return jax.random.bits(key, shape, dtype)
    index = _row_major_index(shape)
    if np.dtype(dtype) == np.uint64:
        high, low = hash_pairs(key, jnp.zeros_like(index), index)
        return (high.astype(jnp.uint64) << np.uint64(32)) | low.astype(jnp.uint64)
    return words(key, jnp.zeros_like(index), index)


def words(key: jax.Array, x0: jax.Array, x1: jax.Array) -> jax.Array:
    """The ``uint32`` words of the counter pairs ``(x0, x1)``, combined as :func:`bits` does.

    :func:`bits` is ``words(key, 0, i)`` for each element's row-major index ``i``; other
    counters give other words of the same key, just as random and independent of them. Only
    for a key for which :func:`applies` holds.
    """
    high, low = hash_pairs(key, x0, x1)
    return high ^ low


def split(key: jax.Array, num: int) -> jax.Array:
    """``jax.random.split(key, num)`` for a scalar key, bit for bit.

    With ``jax_threefry_partitionable`` JAX's new key ``i`` is the pair of words of the counter
    pair ``(0, i)``. Written out, the split is one small kernel, where ``jax.random``'s loop
    and the handling of its result made about six for XLA on CPU to compile.
    """
    if not applies(key, num):
        return jax.random.split(key, num)
    index = lax.iota(jnp.uint32, num)
    high, low = hash_pairs(key, jnp.zeros_like(index), index)
    data = written_out(jnp.stack([high, low], axis=1))
    return jax.random.wrap_key_data(data, impl=jax.random.key_impl(key))


def written_out(x: jax.Array) -> jax.Array:
    """``x``, an array of non-negative integers, computed so that XLA writes it out once.

    XLA on CPU fuses an elementwise computation into every consumer of its result and computes
    it again in each. For random words that repeats the hash: the proposals' rows feed the
    claim's scatter and its gather, each word of the start gives four bytes, and each word of a
    split key feeds every word drawn with that key, so each word would be hashed several times.
    XLA does not fuse a reduction into its consumers, so ``x`` taken as a reduction (the
    maximum of ``x`` and zero, over a stacked pair) is computed once and read from memory. At
    1024x1024 and sparsity 0.5 the mask took a quarter less time.
    """
    return jnp.max(jnp.stack([x, jnp.zeros_like(x)]), axis=0)
