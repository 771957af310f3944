"""`edgevision doctor`: every inference path checked on this machine (compare.py, checks.py, run.py)."""
