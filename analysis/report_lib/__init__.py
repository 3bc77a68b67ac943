"""The modules of analysis/report.py (the command line stays there): cells, stats, read,
tables, plots, v1, v2 and v2_cells, each opening with what it holds."""
