"""One self-contained HTML page about a run, from its run directory.

The page needs no network to view: CSS is inline, plots and sample grids
are PNG data URIs, there is no CDN and no external file. It shows the final
metrics with their provenance, the metric and loss curves, the sample grids
over time, the events and the resolved recipe. A small inline script marks
the page (``<body data-images-ok="N/M">``) once every image has decoded, and
warns on the page when one did not, so a viewer or a test can tell.
"""

from __future__ import annotations

import base64
import html
import io
import json
import time
from pathlib import Path
from typing import Any

import yaml

from gankit.runs.compare import curve
from gankit.rundir.metrics import ROW_KEYS
from gankit.rundir.record import RunRecord, fill_in
from gankit.runs.tutorial_plots import LOSSES, PROGRESS, REAL_VS_FAKE

# At most this many sample grids are embedded, evenly spaced, always the last one.
MAX_GRIDS = 12
# Curve panels: (title, train-row keys).
CURVES = (
    ("Losses", ("loss_d", "loss_g")),
    ("D(x) and D(G(z))", ("d_real", "d_fake")),
    ("Gradient norms", ("grad_norm_d", "grad_norm_g")),
    ("Learning rates", ("lr_d", "lr_g")),
    ("Images per second", ("img_per_s",)),
)
LABELS = {"d_real": "D(x)", "d_fake": "D(G(z))"}

CSS = """
body { font-family: system-ui, sans-serif; margin: 24px; color: #222; max-width: 1200px; }
h1 { font-size: 1.5em; margin-bottom: 4px; }
h2 { font-size: 1.15em; border-bottom: 1px solid #ddd; padding-bottom: 2px; }
.meta { color: #555; } .warn { background: #fee; border: 1px solid #c33; padding: 6px; }
table { border-collapse: collapse; font-size: 0.9em; }
td, th { border: 1px solid #ccc; padding: 3px 8px; text-align: left; vertical-align: top; }
.prov { font-family: monospace; font-size: 0.85em; }
.plots, .grids { display: flex; flex-wrap: wrap; gap: 12px; }
figure { margin: 0; } figcaption { text-align: center; font-size: 0.85em; color: #555; }
.tutorial img { max-width: 560px; } .tutorial { display: flex; flex-wrap: wrap; gap: 12px; }
.plots img { width: 360px; height: 250px; } .grids img { width: 180px; height: 180px; image-rendering: pixelated; }
pre { background: #f6f6f6; padding: 8px; font-size: 0.85em; overflow-x: auto; }
.skipped { background: #fff6d6; border: 1px solid #d9b100; padding: 6px; }
.verdict { font-weight: bold; } .note { color: #733; }
.wide img { width: 100%; height: auto; max-width: 1150px; } .side img { width: 240px; height: auto; }
"""

# Marks the page once images decoded (and where each image sits, for a screenshot check);
# a broken image gets a visible warning, not just a blank box.
SCRIPT = """
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (im) { return im.complete && im.naturalWidth > 0; });
  imgs.forEach(function (im) {
    var r = im.getBoundingClientRect();
    im.setAttribute('data-loaded', im.naturalWidth > 0 ? '1' : '0');
    im.setAttribute('data-rect', [r.left, r.top + window.scrollY, r.width, r.height].map(Math.round).join(','));
  });
  document.body.setAttribute('data-images-ok', ok.length + '/' + imgs.length);
  if (ok.length < imgs.length) {
    var p = document.createElement('p'); p.className = 'warn';
    p.textContent = (imgs.length - ok.length) + ' image(s) failed to load';
    document.body.insertBefore(p, document.body.firstChild);
  }
});
"""


def data_uri(png: bytes, name: str = ".png") -> str:
    kind = "gif" if name.endswith(".gif") else "png"
    return f"data:image/{kind};base64," + base64.b64encode(png).decode("ascii")


def _e(value: Any) -> str:
    return html.escape(str(value))


def _text(value: Any) -> str:
    # JSON for nested provenance (the reference dataset, ...): what metrics.jsonl says, not Python reprs.
    return value if isinstance(value, str) else json.dumps(value, default=str)


def line_plot(title: str, lines: list[tuple], legend: bool = True) -> bytes:
    """A small PNG of ``(label, steps, values[, colour])`` lines against step."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed, and never a GUI window
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(3.6, 2.5), dpi=100)
    for label, steps, values, *colour in lines:
        ax.plot(steps, values, marker="o" if len(steps) < 20 else None, markersize=3, label=label,
                color=colour[0] if colour else None)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("step", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)
    if len(lines) > 1 and legend:
        ax.legend(fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def curve_figures(run: RunRecord) -> list[tuple[str, bytes]]:
    """(title, PNG) for each curve the run has: training scalars, then each evaluated metric."""
    figures = []
    for title, keys in CURVES:
        lines = [(LABELS.get(k, k), *curve(run, k)) for k in keys]
        lines = [line for line in lines if line[1]]
        if lines:
            figures.append((title, line_plot(title, lines)))
    for metric in sorted(run.metrics):
        steps, values = curve(run, "value", metric)
        if steps:
            figures.append((metric, line_plot(metric, [(metric, steps, values)])))
    return figures


def pick_grids(paths: list[Path], limit: int = MAX_GRIDS) -> list[Path]:
    """At most ``limit`` grids, evenly spaced over the run, the last one always kept."""
    if len(paths) <= limit:
        return paths
    idx = {round(i * (len(paths) - 1) / (limit - 1)) for i in range(limit)}
    return [paths[i] for i in sorted(idx)]


def skipped_html(run: RunRecord) -> str:
    """Which metrics the run skipped, why, and the command that fills them in (its metrics_skipped events)."""
    out = []
    for event in run.skipped_metrics():
        names = ", ".join(str(m) for m in event.get("metrics") or []) or "some metrics"
        fill = fill_in(run, event)
        out.append(f"<p class='skipped'>Skipped: <b>{_e(names)}</b> ({_e(event.get('reason') or 'no reason given')})."
                   f" Fill them in, where the weights they need are, with: <code>{_e(fill)}</code></p>")
    return "\n".join(out)


def no_evaluation(run: RunRecord) -> str:
    """Why a run has no metric rows: nothing listed, or it stopped before its first evaluation."""
    section = run.recipe.get("eval") or {}
    listed = [m if isinstance(m, str) else m.get("name", "?") for m in section.get("metrics") or []]
    if not listed:
        return "No evaluation in this run (set eval.metrics in the recipe)."
    when = f"every {section['every']} steps and at the end" if section.get("every") else "at the end of training"
    return (f"No evaluation rows yet: eval.metrics lists {', '.join(listed)}, measured {when}; this run "
            f"({run.status}) has not reached that. `gankit eval {run.path} --log` measures its last checkpoint.")


def metrics_table(run: RunRecord) -> str:
    last = {name: run.final_row(name) for name in run.metrics}
    if not last:
        return (skipped_html(run) or "") + f"<p>{_e(no_evaluation(run))}</p>"
    from gankit.eval.rows import shown_name, value_text

    out = [skipped_html(run),
           "<table><tr><th>metric</th><th>final [95% interval]</th><th>step</th><th>best</th><th>provenance</th></tr>"]
    for name, row in sorted(last.items()):
        best = run.best(name)
        shown = value_text(row) if isinstance(row.get("value"), (int, float)) else "-"
        name = shown_name(row)
        prov = "<br>".join(f"{_e(k)}: {_e(_text(v))}" for k, v in row.items() if k not in ROW_KEYS) or "-"
        out.append(f"<tr><td>{_e(name)}</td><td>{_e(shown)}</td><td>{_e(row.get('step', '-'))}</td>"
                   f"<td>{_e('-' if best is None else f'{best:.4g}')}</td><td class='prov'>{prov}</td></tr>")
    out.append("</table>")
    return "\n".join(out)


def events_table(run: RunRecord) -> str:
    events = run.digest().events
    if not events:
        return "<p>None.</p>"
    out = ["<table><tr><th>step</th><th>event</th><th>details</th></tr>"]
    for ev in events:
        details = "; ".join(f"{k}: {v}" for k, v in ev.items() if k not in ("kind", "step", "time", "event"))
        out.append(f"<tr><td>{_e(ev.get('step', '-'))}</td><td>{_e(ev.get('event', '-'))}</td>"
                   f"<td>{_e(details)}</td></tr>")
    out.append("</table>")
    return "\n".join(out)


def render(run: RunRecord) -> str:
    """The report page for ``run`` as one HTML string."""
    steps = run.digest().steps
    parts = [
        head(f"gankit report: {run.name} {run.id}"),
        f"<h1>{_e(run.name)} <small>{_e(run.id)}</small></h1>",
        f"<p class='meta'>status: <b>{_e(run.status)}</b> · steps: {steps} · run directory: {_e(run.path)}"
        f" · report written {_e(time.strftime('%Y-%m-%d %H:%M:%S'))}</p>",
        "<h2>Final metrics</h2>", metrics_table(run),
        "<h2>Curves</h2><div class='plots' id='curves'>",
    ]
    figures = curve_figures(run)
    for title, png in figures:
        parts.append(f"<figure><img class='curve' alt='{_e(title)}' src='{data_uri(png)}'></figure>")
    if not figures:
        parts.append("<p>No training rows logged.</p>")
    parts.append("</div><h2>Samples (fixed noise)</h2><div class='grids' id='grids'>")
    grids = pick_grids(run.samples)
    for path in grids:
        step = path.stem.removeprefix("step_").lstrip("0") or "0"
        parts.append(f"<figure><img class='grid' alt='step {step}' src='{data_uri(path.read_bytes())}'>"
                     f"<figcaption>step {step}</figcaption></figure>")
    if not grids:
        parts.append("<p>No sample grids in this run.</p>")
    parts += ["</div>", tutorial_html(run.path), "<h2>Events</h2>", events_table(run),
              "<h2>Resolved recipe</h2>",
              f"<pre>{_e(yaml.safe_dump(run.recipe, sort_keys=False, width=100))}</pre>",
              "</body></html>"]
    return "\n".join(parts)


def tutorial_html(run_dir: Path) -> str:
    """The tutorial's plots the run directory holds (the loss plot, the grid's progression, real beside fake)."""
    shown = [(name, title) for name, title in ((LOSSES, "Generator and Discriminator loss"),
                                               (PROGRESS, "The fixed-noise grid through training"),
                                               (REAL_VS_FAKE, "Real images beside the last fake grid"))
             if (run_dir / name).is_file()]
    if not shown:
        return ""
    figures = [f"<figure><img class='tutorial' alt='{_e(title)}' src='{data_uri((run_dir / name).read_bytes(), name)}'>"
               f"<figcaption>{_e(title)} ({_e(name)})</figcaption></figure>" for name, title in shown]
    return "<h2>The tutorial's plots</h2><div class='tutorial' id='tutorial'>" + "".join(figures) + "</div>"


def head(title: str) -> str:
    """The page's start: its title, inline CSS and the image-check script."""
    return (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>\n<title>{_e(title)}</title>\n"
            f"<style>{CSS}</style><script>{SCRIPT}</script></head><body>")


def figure(png: bytes, kind: str, alt: str, caption: str | None = None) -> str:
    cap = f"<figcaption>{_e(caption)}</figcaption>" if caption else ""
    return f"<figure><img class='{kind}' alt='{_e(alt)}' src='{data_uri(png)}'>{cap}</figure>"


def write_report(page: RunRecord | str, out: Path) -> Path:
    """Write a run's report (or a page already rendered) to ``out``."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page if isinstance(page, str) else render(page), encoding="utf-8")
    return out
