"""Detector families: one module each (settings, recognition, contract check, decoder)."""
