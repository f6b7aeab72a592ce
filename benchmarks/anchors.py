"""External anchors: PyTorch's ``torch.nn.init.sparse_`` and the published reference's loop.

Measured only when ``torch`` imports (``nox -s bench -- --torch`` installs the CPU build).
Both run eagerly, as their users run them, on PyTorch's ``(out, in)`` layout: a kernel of
shape ``(..., in, out)`` here is the ``(out, fan_in)`` weight there, the same number of
weights. Neither is the same computation as ``sparseinit.sparse``:

* ``sparse_`` draws ``N(0, std²)`` weights and zeros ``ceil(sparsity * rows)`` entries per
  *column* (per input), one ``torch.randperm`` per column, in a Python loop;
* the reference (Elsayed, Vasan and Mahmood, 2024) draws ``U(-b, b)`` weights and zeros
  ``ceil(sparsity * fan_in)`` entries per *row* (per output neuron), one ``torch.randperm``
  per neuron, in a Python loop: the same semantics as ``sparse``.
"""

import math
import statistics
import time
from collections.abc import Callable

try:
    import torch
except ImportError:  # the anchors are optional
    torch = None


def available() -> bool:
    return torch is not None


def version() -> str:
    return torch.__version__ if torch is not None else "not installed"


def _torch_sparse(shape: tuple[int, ...], sparsity: float) -> Callable[[], object]:
    weight = torch.empty(shape[-1], math.prod(shape[:-1]))
    return lambda: torch.nn.init.sparse_(weight, sparsity)


def _reference_loop(shape: tuple[int, ...], sparsity: float) -> Callable[[], object]:
    fan_out, fan_in = shape[-1], math.prod(shape[:-1])
    weight = torch.empty(fan_out, fan_in)
    zeros = math.ceil(sparsity * fan_in)
    bound = 1.0 / math.sqrt(fan_in)

    def init() -> object:
        with torch.no_grad():
            weight.uniform_(-bound, bound)
            for neuron in range(fan_out):
                weight[neuron, torch.randperm(fan_in)[:zeros]] = 0.0
        return weight

    return init


CANDIDATES = {"torch sparse_": _torch_sparse, "reference loop": _reference_loop}


def time_anchors(
    shape: tuple[int, ...], sparsity: float, repeats: int, target_seconds: float
) -> dict[str, float]:
    """Median milliseconds a call of each anchor, over ``repeats`` repeats of about
    ``target_seconds`` each, the anchors interleaved."""
    fns = {name: make(shape, sparsity) for name, make in CANDIDATES.items()}
    calls: dict[str, int] = {}
    for name, fn in fns.items():
        fn()
        start = time.perf_counter()
        fn()
        one = time.perf_counter() - start
        calls[name] = max(1, min(1000, round(target_seconds / max(one, 1e-9))))
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            for _ in range(calls[name]):
                fn()
            samples[name].append((time.perf_counter() - start) / calls[name])
    return {name: 1e3 * statistics.median(s) for name, s in samples.items()}
