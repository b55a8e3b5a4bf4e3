"""The paper against our results: headline numbers (:mod:`~dni.paper.report`), the mismatch grid of noise
kinds (:mod:`~dni.paper.cross_grid`) and REPRODUCTION.md's generated parts (:mod:`~dni.paper.reproduction`)."""
