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
    """Folder with the mirrored MP elasticity file (../shared/data beside the checkout). A missing mirror fails the
    tests that need it, loudly: a skip would let CI pass without ever running them."""
    from invdesign.data.materials import MP_ELASTICITY

    path = os.environ.get("INVDESIGN_DATA_MIRROR") or str(SHARED_DATA)
    if not (Path(path) / MP_ELASTICITY["fname"]).is_file():
        pytest.fail(f"no MP elasticity mirror at {path} ({MP_ELASTICITY['fname']}); put ../shared/data beside the "
                    "checkout or set INVDESIGN_DATA_MIRROR", pytrace=False)
    return path


@pytest.fixture(scope="module")
def one_torch_thread():
    """Universal potentials on 1-8 atom cells are overhead-bound: one intra-op thread is faster, and far faster on a
    busy CPU (the crystal oracle and committee tests use it)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def run_campaigns(repo: Path, mirror: str, configfile: str, out: Path, timeout: int) -> list[str]:
    """Run every campaign of ``configfile`` with Snakemake into ``out`` (2 cores); the command, for re-runs."""
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", "--configfile", configfile,
           "--config", f"results={out}", f"data={{mirror: {mirror}, cache: data/cache}}"]
    res = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, res.stderr[-4000:]
    return cmd
