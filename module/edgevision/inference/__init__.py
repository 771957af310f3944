"""ONNX Runtime: which providers (providers.py), with what options (options.py), the session and its IO-bound runners (engine.py), and which model copy to load (loader.py)."""
