"""Analyst reports on a trained CLV model: `build.build_report` writes one self-contained HTML file.

Modules, one job each: `data` gathers (model, customer base, evaluation), `drivers` and `tables`
compute, `plots_*` draw (matplotlib, headless), `section_*` assemble words, tables and figures,
`html` renders the page, `build` ties them together and logs the file to MLflow.
"""
