"""mollify: training-time robustness augmentations for image classifiers."""
