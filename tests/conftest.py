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
    from dni.sweep import run_sweep

    out = tmp_path_factory.mktemp("pair") / "pair.nc"
    ds = run_sweep(sigma_train=[0.0, 1.0], sigma_val=[0.0, 0.5, 1.0], repeats=4, out=out, progress=False, log=lambda m: None)
    return ds, out


# Notebook kernels start "python" from PATH (the ipykernel kernelspec): make it this interpreter,
# also when the tests run without an activated virtual environment.
os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
REPO = Path(__file__).resolve().parent.parent
