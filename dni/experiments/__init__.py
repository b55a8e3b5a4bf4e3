"""Experiments built from training and evaluation: the sweep's grid (:mod:`~dni.experiments.config`), model
reuse (:mod:`~dni.experiments.reuse`), its result file (:mod:`~dni.experiments.result_file`), and the ways to run
it — in this process (:mod:`~dni.experiments.sweep`), on Dask (:mod:`~dni.experiments.dask_cluster`), as papermill
jobs (:mod:`~dni.experiments.papermill_jobs`)."""
