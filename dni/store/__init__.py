"""What dni keeps on disk: result sets (:mod:`~dni.store.results`, the NetCDF schema over
(arch, σtrain, σval, repeat)) and trained models (:mod:`~dni.store.checkpoints`: recipe, checkpoints, training states)."""
