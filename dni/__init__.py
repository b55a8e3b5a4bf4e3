"""dni — Deep Noise Injection training of recurrent networks (see README)."""
__version__ = "0.1.0"

# Bring your own model (issue 23). Imported here, after the version: the functions shadow their modules'
# names on the package (``dni.noisify`` is the function; its module is ``sys.modules["dni.noisify"]``).
from .noisify import eval_noise, noisify  # noqa: E402,F401
from .robustness import robustness  # noqa: E402,F401
