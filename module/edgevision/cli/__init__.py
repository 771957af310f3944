"""The `edgevision` command: parser.py, main.py (entry point and the one error handler), one module per command."""
