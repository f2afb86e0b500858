"""The report as one self-contained HTML page: inline CSS and SVG, no script, no network.

Every text that comes from the ledger (workspace, compute and owner names, reasons, details) is
hostile input: it is escaped once, here, where it enters the markup (``_e``), and nothing from the
ledger ever becomes a tag, an attribute name, a URL or a style. A Content-Security-Policy that
allows nothing but inline styles keeps the page from loading anything even if a browser were to
find something to load.

Charts are drawn by hand: one ``<rect class="mark">`` per datum (a day with savings, a rule's
count of one outcome), each with a ``data-value`` and a ``<title>`` (the tooltip).
"""

from __future__ import annotations

from datetime import datetime
from html import escape
from typing import Any

from shared.report import Report, summary

STATUS_COLOURS = {"done": "#2e7d32", "planned": "#1565c0", "skipped": "#9e9e9e", "failed": "#c62828"}
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def _e(value: Any) -> str:
    return escape(str(value), quote=True)


def _num(value: float) -> str:
    return f"{value:,.2f}" if value == 0 or abs(value) >= 0.1 else f"{value:.2g}"


def savings_chart(report: Report, width: int = 720, height: int = 220) -> str:
    """Bars per UTC day: money saved that day when priced, else core-hours."""
    priced = any(m is not None for _, _, m in report.days)
    unit = report.currency if priced else "core-hours"
    values = [(day, (m or 0.0) if priced else ch) for day, ch, m in report.days]
    top = max((v for _, v in values), default=0.0) or 1.0
    left, plot_h = 56, height - 48
    step = (width - left - 8) / max(1, len(values))
    marks = []
    for i, (day, value) in enumerate(values):
        if value <= 0:
            continue
        h = max(1.0, plot_h * value / top)
        x, y = left + i * step + 1, 10 + plot_h - h
        marks.append(f'<rect class="mark" data-value="{value:.6f}" data-day="{day:%Y-%m-%d}" x="{x:.1f}" y="{y:.1f}" '
                     f'width="{max(1.0, step - 2):.1f}" height="{h:.1f}" fill="#2e7d32"><title>{day:%Y-%m-%d}: '
                     f'{_e(_num(value))} {_e(unit)}</title></rect>')
    ticks = [f'<text x="{left - 6}" y="{10 + plot_h - plot_h * f + 4:.1f}" text-anchor="end">{_e(_num(top * f))}</text>'
             for f in (0, 0.5, 1)]
    labels = []
    if values:
        labels = [f'<text x="{left}" y="{height - 8}">{values[0][0]:%Y-%m-%d}</text>',
                  f'<text x="{width - 8}" y="{height - 8}" text-anchor="end">{values[-1][0]:%Y-%m-%d}</text>']
    return (f'<svg id="savings-chart" role="img" aria-label="savings per day in {_e(unit)}" viewBox="0 0 {width} {height}" '
            f'width="{width}" height="{height}" data-unit="{_e(unit)}">'
            f'<line x1="{left}" y1="{10 + plot_h}" x2="{width - 8}" y2="{10 + plot_h}" stroke="#888"/>'
            + "".join(ticks + marks + labels) + "</svg>")


def outcomes_chart(report: Report, width: int = 720) -> str:
    """One stacked bar per rule: its outcomes by status."""
    rules = sorted({rule for rule, _ in report.outcomes_by_rule})
    row_h, left = 26, 170
    height = max(40, 20 + row_h * len(rules))
    top = max((sum(n for (r, _), n in report.outcomes_by_rule.items() if r == rule) for rule in rules), default=1) or 1
    scale = (width - left - 60) / top
    parts = []
    for i, rule in enumerate(rules):
        y = 10 + i * row_h
        label = rule if len(rule) <= 26 else rule[:25] + "…"
        parts.append(f'<text x="{left - 8}" y="{y + 15}" text-anchor="end">{_e(label)}<title>{_e(rule)}</title></text>')
        x = float(left)
        for status in ("done", "planned", "skipped", "failed"):
            count = report.outcomes_by_rule.get((rule, status), 0)
            if not count:
                continue
            w = count * scale
            parts.append(f'<rect class="mark" data-value="{count}" data-rule="{_e(rule)}" data-status="{status}" x="{x:.1f}" '
                         f'y="{y}" width="{w:.1f}" height="{row_h - 6}" fill="{STATUS_COLOURS[status]}">'
                         f'<title>{_e(rule)}: {count} {status}</title></rect>')
            x += w
        total = sum(n for (r, _), n in report.outcomes_by_rule.items() if r == rule)
        parts.append(f'<text x="{x + 6:.1f}" y="{y + 15}">{total}</text>')
    legend = "".join(f'<span class="key"><i style="background:{c}"></i>{s}</span>' for s, c in STATUS_COLOURS.items())
    return (f'<svg id="outcomes-chart" role="img" aria-label="actions by rule and outcome" viewBox="0 0 {width} {height}" '
            f'width="{width}" height="{height}">' + "".join(parts) + f"</svg><div class=\"legend\">{legend}</div>")


def _table(headers: list[str], rows: list[list[Any]], table_id: str) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _at(value: Any) -> str:
    return f"{value:%Y-%m-%d %H:%M}Z" if isinstance(value, datetime) else str(value or "")


def render(report: Report, version: str = "") -> str:
    """The whole page."""
    money_head = f"saved ({report.currency})"
    lines = [[line.workspace, line.rule, line.actions, line.done, line.failed, line.skipped, line.planned, line.cores,
              _num(line.core_hours), "-" if line.money is None else _num(line.money)] for line in report.lines]
    recent = [[_at(r.get("At")), r.get("Status", ""), r.get("Action", ""), r.get("Workspace", ""), r.get("Target", ""),
               r.get("Rule", ""), r.get("Detail", ""), r.get("Reason", "")] for r in report.recent]
    notes = "".join(f"<li>{_e(n)}</li>" for n in report.notes) or "<li>none</li>"
    head = "".join(f"<p class=\"summary\">{_e(line)}</p>" for line in summary(report))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>aml-autopilot report {report.since:%Y-%m-%d} to {report.now:%Y-%m-%d}</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; max-width: 1100px; }}
h1 {{ font-size: 20px; }} h2 {{ font-size: 16px; margin-top: 28px; }}
table {{ border-collapse: collapse; width: 100%; }} th, td {{ border-bottom: 1px solid #ddd; padding: 4px 6px; text-align: left;
  vertical-align: top; overflow-wrap: anywhere; }}
th {{ background: #f3f3f3; white-space: nowrap; }} #recent td:first-child {{ white-space: nowrap; }} svg text {{ font-size: 11px; fill: #333; }}
.summary {{ margin: 2px 0; }} .legend {{ margin: 4px 0 0 170px; }}
.key {{ margin-right: 14px; }} .key i {{ display: inline-block; width: 10px; height: 10px; margin-right: 4px; }}
.muted {{ color: #777; }}
</style></head>
<body>
<h1>aml-autopilot: what it did and saved</h1>
<p class="muted">{report.since:%Y-%m-%d %H:%M}Z to {report.now:%Y-%m-%d %H:%M}Z · autopilot {_e(version)} ·
money is VM-hours × the pay-as-you-go Linux retail price of the size in the workspace's region (Azure Retail Prices API)</p>
{head}
<h2>Savings per day</h2>
{savings_chart(report)}
<h2>Actions by rule and outcome</h2>
{outcomes_chart(report)}
<h2>Per workspace and rule</h2>
{_table(["workspace", "rule", "actions", "done", "failed", "skipped", "planned", "cores freed", "core-hours", money_head], lines, "lines")}
<h2>Notes</h2>
<ul id="notes">{notes}</ul>
<h2>Recent outcomes</h2>
{_table(["at", "status", "action", "workspace", "target", "rule", "detail", "reason"], recent, "recent")}
</body></html>
"""
