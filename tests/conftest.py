"""Shared fixtures: the real WordNet and the shipped class lists."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def wordnet():
    import hierarchy

    return hierarchy.load_wordnet()


@pytest.fixture(scope="session")
def tiny_wnids() -> list[str]:
    return (ROOT / "data" / "tiny-imagenet-200" / "wnids.txt").read_text().split()


@pytest.fixture(scope="session")
def imagenet_wnids() -> list[str]:
    return (ROOT / "data" / "imagenet-1k" / "wnids.txt").read_text().split()


@pytest.fixture(scope="session")
def tiny_tree(wordnet, tiny_wnids):
    import hierarchy

    return hierarchy.ClassTree.from_wnids(tiny_wnids, wordnet=wordnet)
