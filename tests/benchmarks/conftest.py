import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@pytest.fixture(scope="session")
def split():
    """The fast subset every benchmark test runs on: 200 classes of the real tree, 32-d clusters."""
    from benchmarks._data import synthetic

    return synthetic(per_class=20, val_per_class=5, dev_per_class=5, dim=32)
