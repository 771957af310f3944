"""Accelerator discovery: which GPU passthrough mode EFLOW gave this container."""
