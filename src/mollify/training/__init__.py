"""Training a classifier (stage `train`): the loop (`loop`: SGD, warm-up and schedule, bf16 autocast,
resumable checkpoints), the soft-target losses (`losses`), the divergence guard (`divergence`, also
used by the diffusion stage's DDPM loop), torchrun / DDP helpers (`distributed`) and the run that
builds one (dataset, recipe, seed) from params (`run`). Nothing here evaluates a model."""
