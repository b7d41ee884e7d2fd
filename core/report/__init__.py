"""Reports: a study written out for a reader (one self-contained HTML file) and its tables as CSV and LaTeX.

Top of the stages: a report reads datasets, splits and audits, predictions tables, runs and the
analysis of them, and changes none of it. Figures are Plotly, drawn the same way as on the pages.
"""
