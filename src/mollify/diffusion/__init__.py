"""The DDPM behind DiffAug: the UNet, noise schedule and one-step estimate (`model`, used by DiffAug in
the train and evaluate stages), its training loop (`training`) and the diffusion stage's run
(`prepare`)."""
