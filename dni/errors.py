"""Named errors of dni. Each message is one line that says what to fix.

The CLI turns any :class:`DniError` into ``dni: error: <message>`` and a non-zero exit.
"""


class DniError(Exception):
    """Base class of every error dni raises on purpose (bad input, missing data, ...)."""


class InvalidSigmaError(DniError, ValueError):
    """A noise level σ that is negative, NaN, infinite or not a number."""


class UnknownPresetError(DniError, KeyError):
    """A preset name that is not one of :data:`dni.nn.presets.PRESETS`."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0])


class DataNotFoundError(DniError, FileNotFoundError):
    """MNIST files missing or corrupt; the message says where to put them or how to download."""


class CheckpointError(DniError, ValueError):
    """A checkpoint that cannot be read, or one of another preset than asked for."""


class OutputPathError(DniError, OSError):
    """An output path that cannot be written."""


class InvalidArgumentError(DniError, ValueError):
    """Any other bad argument (empty σ list, repeats < 1, epochs < 1, ...)."""


class CheckpointConflictError(CheckpointError):
    """An existing checkpoint (or training state) of other settings that dni will not replace unasked."""


class ResultConflictError(DniError, ValueError):
    """An existing result file that the results of this run cannot join (other data, eval seed or weights)."""


class ResultSchemaError(DniError, ValueError):
    """A NetCDF file that lacks what a dni command needs (dims, variables); the message names them."""


class ClusterError(DniError, RuntimeError):
    """A Dask scheduler that cannot be reached, or a task that failed on a worker; the message names which."""


class NoisifyError(DniError, ValueError):
    """A model or call :func:`dni.noisify` cannot take (nothing to noisify, an unsupported option); one line."""


class NotNoisifiedError(DniError, ValueError):
    """Inference noise asked for a model that has no noisified layer."""


class InvalidNoiseSpecError(InvalidArgumentError):
    """A noise spec that cannot be parsed or has an invalid setting; the message says what to fix."""
