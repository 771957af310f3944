"""The module's one typed configuration (model.py) and the one way it is loaded (load.py)."""
