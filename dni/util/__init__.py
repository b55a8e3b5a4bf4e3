"""The ground floor: safe file writes (:mod:`~dni.util.io`), progress bars (:mod:`~dni.util.progress`) and
the argument checks every layer shares (:mod:`~dni.util.validation`), and confidence intervals across
training seeds (:mod:`~dni.util.intervals`). Imports nothing of dni but :mod:`dni.errors`."""
