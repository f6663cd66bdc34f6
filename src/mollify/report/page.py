"""The HTML page that `dvc plots show` / `dvc plots diff` fill (DVC's `plots.html_template`), with
Vega, Vega-Lite and Vega-Embed inlined from the vl-convert-python package, so that it renders
without a network: DVC's default page loads them from a CDN and is blank offline."""

from __future__ import annotations

VEGA_LITE = "5.21"  # the newest Vega-Lite 5 vl-convert ships; our templates and DVC's are `$schema` v5

# DVC fills {plot_divs} and {refresh_tag}; without {scripts} it adds no CDN <script src=...> tags.
# The bundle sets window.vega, window.vegaLite and window.vegaEmbed, which DVC's plot divs call.
PAGE = """<!DOCTYPE html>
<html>
<head>
    {refresh_tag}
    <meta charset="utf-8">
    <title>DVC Plot</title>
    <script>
(function () {  // the bundle is an ES module: its top-level names stay out of the page's global scope
"use strict";
<JAVASCRIPT>
})();
    </script>
    <style>
        table {
            border-spacing: 15px;
        }
    </style>
</head>
<body>
    {plot_divs}
</body>
</html>
"""


def offline_page() -> str:
    """The page with Vega, Vega-Lite and Vega-Embed inlined (they define vega, vegaLite, vegaEmbed)."""
    import vl_convert

    return PAGE.replace("<JAVASCRIPT>", vl_convert.javascript_bundle(vl_version=VEGA_LITE))
