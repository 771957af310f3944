"""Camera sources: URIs, readers, and the per-camera reader thread."""
