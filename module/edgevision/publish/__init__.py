"""Publishing: message shapes and sinks."""
