"""What the module serves: HTTP endpoints (http.py) and their Prometheus exposition (prometheus.py), both through the control interface."""
