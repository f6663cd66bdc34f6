"""Stage `validate`: the whole params file checked before any other stage runs, and each stage's
resolved settings written for DVC.

Every stage depends on its own settings file (data/settings/<stage>/<item>.json): the values of the
param keys it lists in dvc.yaml with every schema default filled in. DVC runs this stage first and
stops the pipeline on bad params before it removes the outputs of any stage; a valid edit (of
params.yaml or of a default in the schema) re-runs exactly the stages whose settings it changes."""

from pathlib import Path

import typer
import yaml

from mollify.cli import PARAMS, run
from mollify.config import load_params
from mollify.dag import stage_settings, write_settings

app = typer.Typer(add_completion=False)


@app.command()
def main(params: Path = PARAMS) -> None:
    """Validate every key of the params file (unknown keys, types, ranges, methods without recipes)
    and write each stage instance's resolved settings."""
    cfg = load_params(params)
    write_settings(stage_settings(yaml.safe_load(params.read_text()), cfg.model_dump(mode="json")))


if __name__ == "__main__":
    run(app)
