"""Accelerator discovery: which GPU passthrough mode EFLOW gave this container."""

from edgevision.accel.discover import AcceleratorInfo, GpuInfo, Probe, ProbeTargets, discover

__all__ = ["AcceleratorInfo", "GpuInfo", "Probe", "ProbeTargets", "discover"]
