"""The HTML page shared by every report (`locus report`, `locus external`, `locus validation-report`).

The Vega/Vega-Lite/vega-embed bundle is inlined once (from vl-convert, no CDN) and each chart's
spec is embedded after it, so a page opens offline in any browser.
"""

from __future__ import annotations

import html
import json

import vl_convert
from altair.utils._importers import vl_version_for_vl_convert  # the Vega-Lite version Altair emits

from locus import io

# The page shell shared with `locus external`: inlined Vega bundle, the body, then every chart spec.
SHELL = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em}}
dt{{font-weight:600;float:left;clear:left;width:9em}}dd{{margin-left:10em}}
table{{border-collapse:collapse;font-size:.9em}}td,th{{border:1px solid #ccc;padding:2px 6px}}
.chart{{margin:1.5em 0}}.note{{background:#f4f6fa;padding:.4em .8em;border-left:3px solid #4c78a8}}</style>
<script>{bundle}</script></head><body>
<h1>{title}</h1>
{body}
<script>const specs = {specs};
for (const [id, spec] of Object.entries(specs)) {{ vegaEmbed('#' + id, spec, {{actions: false}}).catch(console.error); }}
</script></body></html>
"""


def save_figures(figures: dict, directory) -> None:
    """Every chart as PNG (2×) and SVG in `directory`, written atomically as one directory."""
    with io.atomic_path(directory, is_dir=True) as tmp:
        for name, chart in figures.items():
            chart.save(tmp / f"{name}.png", scale_factor=2)
            chart.save(tmp / f"{name}.svg")


def chart_sections(figures: dict, notes: dict, sections: list[tuple[str, str]]) -> tuple[str, dict]:
    """(HTML of each (title, figure-name prefix) section with its notes, {div id: Vega-Lite spec})."""
    specs, out = {}, []
    for title, prefix in sections:
        names = [n for n in figures if n.startswith(prefix)]
        divs = []
        for i, name in enumerate(names):
            div_id = f"{prefix.strip('_')}_{i}"
            specs[div_id] = figures[name].to_dict()
            divs.append(f'<div class="chart" id="{div_id}"></div>')
        note = "".join(f"<p class=note>{html.escape(notes[n])}</p>" for n in names if n in notes)
        out.append(f"<h2>{html.escape(title)}</h2>" + note + "".join(divs))
    return "\n".join(out), specs


def html_page(title: str, body: str, specs: dict) -> str:
    """A self-contained page: the Vega bundle inlined once (no CDN), `body`, and the specs embedded."""
    return SHELL.format(
        title=html.escape(title),
        bundle=vl_convert.javascript_bundle(vl_version=vl_version_for_vl_convert()),
        body=body,
        specs=json.dumps(specs).replace("</", "<\\/"),
    )
