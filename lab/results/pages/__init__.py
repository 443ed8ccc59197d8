"""The lab's HTML pages: `lab report` (one experiment, or several compared), served by `lab ui` too (lab/ui/).

    facts.py     what a page says about an experiment: headline, natural x, declared metrics (no HTML)
    figures.py   the plotly figures built from those facts
    render.py    the Jinja2 templates (autoescaped) and writing a page with plotly.min.js beside it
"""
