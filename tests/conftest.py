import os
import sys
from pathlib import Path

import pytest

FULL_MNIST = Path(os.environ.get("DNI_DATA_DIR", "/nonexistent")) / "MNIST" / "raw" / "t10k-images-idx3-ubyte"

needs_full_mnist = pytest.mark.skipif(not FULL_MNIST.is_file(), reason="full MNIST not found: set DNI_DATA_DIR (CI sets ../shared/data)")


@pytest.fixture(scope="session")
def paper_pair(tmp_path_factory):
    """lstm28 trained on the embedded subset at σtrain 0 and 1.0 with the default settings.

    Shared by the learning and evaluation tests (~75 s on 2 cores).
    """
    from dni.experiments.sweep import run_sweep

    out = tmp_path_factory.mktemp("pair") / "pair.nc"
    ds = run_sweep(sigma_train=[0.0, 1.0], sigma_val=[0.0, 0.5, 1.0], repeats=4, out=out, progress=False, log=lambda m: None)
    return ds, out


# Notebook kernels start "python" from PATH (the ipykernel kernelspec): make it this interpreter,
# also when the tests run without an activated virtual environment.
os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture()
def threads():
    """Set torch's thread count inside a test (``threads(1)``); the previous count comes back afterwards."""
    import torch

    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def torch_threads_restored(request):
    """Every test starts with the process's torch thread count: a test (or library code run in this
    process as a Dask task) that changes it must not change the numbers of the tests after it —
    results depend bit for bit on the thread count (a one-thread run differs from a two-thread one)."""
    import torch

    before = torch.get_num_threads()
    yield
    if torch.get_num_threads() != before:
        print(f"\n{request.node.nodeid} left torch at {torch.get_num_threads()} thread(s), not {before}: restored")
        torch.set_num_threads(before)
