"""Prometheus exposition of the pipeline metrics, read at scrape time (nothing per frame).

Named and labelled in the style of edgeHub's and edgeAgent's own metrics, so the Azure Monitor
metrics-collector module can scrape it beside them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from edgevision.control import Control
from edgevision.errors import NotReady


class PipelineCollector(Collector):
    def __init__(self, control: Control) -> None:
        self._control = control

    def collect(self) -> Iterator[Metric]:
        try:
            snapshot = self._control.metrics_snapshot()
        except NotReady:
            return
        histograms = snapshot.get("latency_histograms", {})
        provider = str(snapshot.get("provider", ""))
        frames = CounterMetricFamily("edgevision_frames", "Frames by camera and state", labels=["camera", "state"])
        dropped = CounterMetricFamily(
            "edgevision_dropped_frames", "Dropped frames by reason", labels=["camera", "reason"]
        )
        fps = GaugeMetricFamily("edgevision_inference_fps", "Frames inferred per second", labels=["camera", "provider"])
        up = GaugeMetricFamily("edgevision_camera_up", "1 while the camera streams", labels=["camera", "state"])
        outages = CounterMetricFamily("edgevision_camera_outages", "Camera outages", labels=["camera"])
        latency = HistogramMetricFamily(
            "edgevision_latency_ms", "Capture to publish latency (ms)", labels=["camera", "provider"]
        )
        for camera, c in snapshot["cameras"].items():
            for state in ("captured", "inferred", "dropped", "corrupt", "oversize"):
                frames.add_metric([camera, state], c[state])
            for reason, count in c["dropped_by_reason"].items():
                dropped.add_metric([camera, reason], count)
            fps.add_metric([camera, provider], c["fps"])
            up.add_metric([camera, c["state"]], 1.0 if c["state"] == "streaming" else 0.0)
            outages.add_metric([camera], c["outages"])
            if camera in histograms:
                buckets, total = histograms[camera]
                latency.add_metric([camera, provider], buckets, total)
        yield from (frames, dropped, fps, up, outages, latency)
        stages = GaugeMetricFamily("edgevision_stage_ms_per_frame", "Mean ms per frame of each stage", labels=["stage"])
        for stage, value in snapshot["stages_ms_per_frame_total"].items():
            if value is not None:
                stages.add_metric([stage], value)
        queues = GaugeMetricFamily("edgevision_queue_depth", "Items waiting per queue", labels=["queue"])
        for name, depth in snapshot["queues"].items():
            queues.add_metric([name], depth)
        switches = CounterMetricFamily(
            "edgevision_provider_switches",
            "Execution provider switches at run time (GPU failures and restores)",
            labels=["provider"],
        )
        switches.add_metric([provider], snapshot["provider_switches"])
        yield from (stages, queues, switches)
        if snapshot.get("twin"):
            twin = GaugeMetricFamily("edgevision_twin_synced", "1 while the module twin is in sync", labels=["state"])
            twin.add_metric([snapshot["twin"]], 1.0 if snapshot["twin"] == "synced" else 0.0)
            yield twin
        yield from _gpu(snapshot.get("gpu") or [])
        yield from _analytics(snapshot.get("analytics") or {})


def _analytics(cameras: dict[str, Any]) -> Iterator[Metric]:
    """Line crossings, zone entries and occupancy per camera, zone or line, and label."""
    crossings = CounterMetricFamily(
        "edgevision_line_crossings", "Tracks that crossed a line", labels=["camera", "line", "direction", "label"]
    )
    entries = CounterMetricFamily(
        "edgevision_zone_entries", "Tracks that entered a zone", labels=["camera", "zone", "label"]
    )
    occupancy = GaugeMetricFamily(
        "edgevision_zone_occupancy", "Tracks in a zone now", labels=["camera", "zone", "label"]
    )
    tracks = GaugeMetricFamily("edgevision_tracks_active", "Confirmed tracks being followed", labels=["camera"])
    for camera, counts in cameras.items():
        for line, directions in counts.get("lines", {}).items():
            for direction, labels in directions.items():
                for label, count in labels.items():
                    crossings.add_metric([camera, line, direction, label], count)
        for zone, figures in counts.get("zones", {}).items():
            for label, count in figures["entered"].items():
                entries.add_metric([camera, zone, label], count)
            # Every label the zone ever counted, at 0 when none is inside: a series that vanishes
            # reads as "no data", not as an empty zone.
            for label in set(figures["entered"]) | set(figures["occupancy"]):
                occupancy.add_metric([camera, zone, label], figures["occupancy"].get(label, 0))
        if counts.get("tracks"):
            tracks.add_metric([camera], counts["tracks"]["active"])
    yield from (crossings, entries, occupancy, tracks)


def _gpu(readings: list[dict[str, Any]]) -> Iterator[Metric]:
    for key, help_text in (
        ("utilization_pct", "GPU utilisation (%)"),
        ("memory_used_mib", "GPU memory used (MiB)"),
        ("temperature_c", "GPU temperature (C)"),
        ("power_w", "GPU power (W)"),
    ):
        family = GaugeMetricFamily(f"edgevision_gpu_{key}", help_text, labels=["gpu"])
        for reading in readings:
            if key in reading:
                family.add_metric([str(reading["index"])], reading[key])
        yield family


def registry_for(control: Control) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PipelineCollector(control))
    return registry
