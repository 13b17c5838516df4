"""Private copies of the explorer's model (``explore_model``, in tests/conftest.py) to edit, and the browser."""

import shutil

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
def model_copy(explore_model, tmp_path):
    """A private copy of the model, to edit."""
    def copy(name: str = "model"):
        return shutil.copytree(explore_model["model"], tmp_path / name)
    return copy


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("needs Debian's chromium (.ci/run installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                               args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                                     "--disable-component-update", "--disable-sync", "--no-first-run"])
        yield b
        b.close()
