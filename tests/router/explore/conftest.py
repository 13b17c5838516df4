"""Private copies of the explorer's model (``explore_model``, in tests/conftest.py) to edit."""

import shutil

import pytest


@pytest.fixture
def model_copy(explore_model, tmp_path):
    """A private copy of the model, to edit."""
    def copy(name: str = "model"):
        return shutil.copytree(explore_model["model"], tmp_path / name)
    return copy
