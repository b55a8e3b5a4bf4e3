"""Noisy inference: accuracy of trained models at σval × repeats (:mod:`~dni.evaluation.evaluate`, paper
§III, Figs 2 and 10), and of any noisified model over any DataLoader (:mod:`~dni.evaluation.robustness`)."""
