"""`edgevision benchmark`: measurements (measure.py), the run and its verdicts (run.py), the report (report.py), and the soak run (soak.py)."""
