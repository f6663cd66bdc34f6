"""Stage `validate`: the whole params file checked before any other stage runs.

Every stage depends on its output, so DVC runs it first and stops the pipeline on bad params
before it removes the outputs of any stage. The output's content is the same for every valid
params file: a valid edit re-runs only the stages whose own params changed."""

from pathlib import Path

import typer

from mollify import paths
from mollify.cli import PARAMS, run
from mollify.config import load_params
from mollify.io import save_text

app = typer.Typer(add_completion=False)


@app.command()
def main(params: Path = PARAMS) -> None:
    """Validate every key of the params file (unknown keys, types, ranges, methods without recipes)."""
    load_params(params)
    save_text(paths.validated_file(), "params valid\n")


if __name__ == "__main__":
    run(app)
