"""Deterministic randomness for the generator: seeded streams and counter-based hashes.

Two kinds of randomness keep generation both reproducible and streamable:

- *streams*: a :class:`numpy.random.Generator` seeded by ``(seed, month, stream)``, so each month and
  each table draws from its own stream and a month can be generated without the ones before it;
- *hashes*: uniforms computed from ``(seed, stream, index)`` with SplitMix64, so a customer's
  permanent attributes (birth date, region, latent risk) can be recomputed whenever the customer
  returns, without keeping every customer in memory.
"""

from __future__ import annotations

import numpy as np

__all__ = ["STREAMS", "hash_normal", "hash_uniform", "month_rng"]

# Stream identifiers: append new ones at the end, never renumber (that would change every file).
STREAMS = {
    "customers": 1,
    "applications": 2,
    "bureau": 3,
    "labels": 4,
    "outcomes": 5,
    "repayments": 6,
    "defects": 7,
    "returning": 8,
    "selection": 9,
}

_MASK64 = (1 << 64) - 1


def _mix_scalar(x: int) -> int:
    """SplitMix64 finaliser on a Python int (no numpy overflow warnings)."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def _mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser on a ``uint64`` array (wrap-around arithmetic is intended)."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def hash_uniform(seed: int, stream: int, index: np.ndarray) -> np.ndarray:
    """Uniforms in the open interval (0, 1), a pure function of ``(seed, stream, index)``.

    Parameters
    ----------
    seed : int
        The dataset seed.
    stream : int
        Which attribute the uniform is for; different streams give independent values.
    index : numpy.ndarray
        Non-negative integer indices (e.g. customer ordinals).

    Returns
    -------
    numpy.ndarray
        ``float64`` values, one per index.

    Examples
    --------
    >>> import numpy as np
    >>> u = hash_uniform(42, 1, np.arange(3))
    >>> bool(((u > 0) & (u < 1)).all()) and bool((u == hash_uniform(42, 1, np.arange(3))).all())
    True
    """
    key = _mix_scalar(_mix_scalar(int(seed) & _MASK64) ^ (int(stream) * 0xD1B54A32D192ED03 & _MASK64))
    h = _mix(np.asarray(index, dtype=np.int64).astype(np.uint64) ^ np.uint64(key))
    h = _mix(h ^ np.uint64(key))
    return ((h >> np.uint64(11)).astype(np.float64) + 0.5) * (1.0 / (1 << 53))


def hash_normal(seed: int, stream: int, index: np.ndarray) -> np.ndarray:
    """Standard normal values from two hashed uniforms (Box-Muller); uses streams ``stream`` and ``stream + 1``."""
    u1 = hash_uniform(seed, stream, index)
    u2 = hash_uniform(seed, stream + 1, index)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


def month_rng(seed: int, month_number: int, stream: str, *extra: int) -> np.random.Generator:
    """A generator seeded by ``(seed, month, stream, *extra)``.

    ``month_number`` is the absolute month (``year * 12 + month - 1``), so a month's draws do not
    depend on where the timeline starts.
    """
    return np.random.default_rng([int(seed), int(month_number), STREAMS[stream], *map(int, extra)])
