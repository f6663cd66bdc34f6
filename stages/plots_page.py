"""Stage `plots_page`: the page `dvc plots show` / `diff` fill, with the Vega libraries inlined."""

import typer

from mollify import paths
from mollify.cli import run
from mollify.io import check_writable, save_text
from mollify.report.page import offline_page

app = typer.Typer(add_completion=False)


@app.command()
def main() -> None:
    """Write plots/offline_page.html, the `plots.html_template` of .dvc/config: `dvc plots show`
    and `dvc plots diff` then write HTML that renders without a network."""
    check_writable(paths.plots_page())
    save_text(paths.plots_page(), offline_page())
    typer.echo(f"{paths.plots_page()}: Vega, Vega-Lite and Vega-Embed inlined")


if __name__ == "__main__":
    run(app)
