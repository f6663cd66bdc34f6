"""Figures and tables of the results (stage `plot`: `plots`, `published`), example images drawn by the
corrupt and diffusion stages (`examples`), and the offline page `dvc plots show` fills (stage
`plots_page`: `page`)."""
