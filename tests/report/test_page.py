"""The page of `dvc plots show` / `diff`: the Vega libraries inlined, nothing fetched from a network."""

import json
import os
import shutil
from html.parser import HTMLParser
from pathlib import Path

from dvc.config import Config
from dvc_render import render_html
from dvc_render.vega import VegaRenderer
from dvc_render.vega_templates import Template

from mollify import paths
from mollify.report.page import offline_page
from tests.conftest import ROOT, call_stage


class _Page(HTMLParser):
    """The scripts of a page and every address its tags load (src, href)."""

    def __init__(self, html: str):
        super().__init__()
        self.scripts: list[str] = []
        self.addresses: list[str] = []
        self._in_script = False
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.addresses += [value for name, value in attrs if name in ("src", "href")]
        if tag == "script":
            self._in_script = True
            self.scripts.append("")

    def handle_endtag(self, tag):
        self._in_script = self._in_script and tag != "script"

    def handle_data(self, data):
        if self._in_script:
            self.scripts[-1] += data


def test_dvc_plots_page_loads_nothing_from_a_network(tmp_path):
    template = tmp_path / "page.html"
    template.write_text(offline_page())
    content = json.loads((ROOT / ".dvc" / "plots" / "lines_by_method.json").read_text())
    rows = [{"dataset": "demo", "method": "baseline", "severity": s, "err": 0.1 * s, "rev": "workspace"} for s in range(3)]
    renderer = VegaRenderer(rows, "plot", template=Template(content, name="lines_by_method"), x="severity", y="err")
    render_html([renderer], tmp_path / "index.html", html_template=template)  # what `dvc plots show` does
    page = _Page((tmp_path / "index.html").read_text())
    assert page.addresses == []  # no <script src>, <link href>: DVC's default page loads three scripts from a CDN
    assert len(page.scripts) == 2
    assert "window.vegaEmbed=" in page.scripts[0]  # the libraries, inline, before the plot that calls them
    assert "vegaEmbed('#" in page.scripts[1] and '"severity": 2' in page.scripts[1]


def test_dvc_uses_the_page_the_plots_page_stage_writes(tmp_path, monkeypatch):
    configured = Config(dvc_dir=str(ROOT / ".dvc"))["plots"]["html_template"]
    assert Path(os.path.normpath(Path(".dvc") / configured)) == paths.plots_page()
    shutil.copytree(ROOT / "stages", tmp_path / "stages")
    monkeypatch.chdir(tmp_path)
    assert call_stage("plots_page", monkeypatch=monkeypatch) == 0
    assert paths.plots_page().read_text() == offline_page()
