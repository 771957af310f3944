"""Model manifests, model files and the derived copies of a graph."""
