"""Seeded training that leaves the caller's random state alone."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run a block with torch's CPU generator seeded, then give the caller's generator state back.

    Weight initialisation, dropout and drop-path draw from that generator, so a
    fit inside ``seeded(seed)`` is the same for the same seed whatever the
    caller did with torch's generator before, and changes nothing for after.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield
