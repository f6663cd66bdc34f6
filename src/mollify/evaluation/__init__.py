"""Evaluating trained classifiers (stages `evaluate` and `summarize`): prediction and the DiffAug
Ensemble (`predict`), calibration and error metrics (`metrics`), the corrupted summaries and means over
seeds (`summary`), the comparison papers' other evaluations (`perturbations`: occlusion, crop and noise
sweeps; `ood`; `certify`; `ensemble`: deep ensembles), the evaluate stage's run (`run`) and the
summarize stage's (`seeds`). Nothing here trains a model."""
