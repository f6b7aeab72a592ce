"""Shared test settings: hypothesis profiles and helpers used across test modules."""

import os

import jax
import numpy as np
import pytest
from hypothesis import HealthCheck, settings

# `default`: a plain pytest run and the full run of `nox -s tests`. JAX compiles on first use:
# deadlines would measure compilation, not the library. Derandomized, so a run draws the same
# examples every time and on every machine.
settings.register_profile(
    "default",
    deadline=None,
    max_examples=40,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
# `side`: the runs beside the full one (another dtype mode, Python or set of versions; the
# noxfile sets HYPOTHESIS_PROFILE=side). They look for what differs between versions, not for
# rare inputs: the full run draws the many examples.
settings.register_profile("side", parent=settings.get_profile("default"), max_examples=10)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

X64 = bool(jax.config.read("jax_enable_x64"))


def zeros_per_neuron(w, out_axis=-1, batch_axis=()):
    """Zeros of each neuron of ``w``: counts over every axis but the neuron axes."""
    w = np.asarray(w)
    ndim = w.ndim
    neuron = {a % ndim for a in ((out_axis,) if isinstance(out_axis, int) else out_axis)}
    neuron |= {a % ndim for a in ((batch_axis,) if isinstance(batch_axis, int) else batch_axis)}
    fan = tuple(a for a in range(ndim) if a not in neuron)
    return (w == 0).sum(axis=fan)


@pytest.fixture
def key():
    return jax.random.key(0)
