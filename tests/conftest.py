import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = (REPO.parent / "shared" / "data").resolve()


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def mirror() -> str:
    """Folder with the mirrored MP elasticity file (../shared/data beside the checkout)."""
    path = os.environ.get("INVDESIGN_DATA_MIRROR") or str(SHARED_DATA)
    if not Path(path).is_dir():
        pytest.skip(f"no data mirror at {path}; set INVDESIGN_DATA_MIRROR")
    return path
