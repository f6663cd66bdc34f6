"""Figures and tables of the results (stage `plot`: `plots`, the per-pair `verdicts`, the data
`profile` against CIFAR-10-C, the `machines` that made the runs, `published` numbers beside ours;
`readme` copies the results table into README.md), example images drawn by the corrupt and
diffusion stages (`examples`), and the offline page `dvc plots show` fills (stage `plots_page`: `page`)."""
