"""`edgevision models inspect`: what a model file is, as the module would run it, and why."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgevision.detector.recognise import LabelsNeededError, UnrecognisedModelError, recognise_file
from edgevision.families.registry import FAMILIES
from edgevision.models.manifest import manifest_for_file
from edgevision.models.onnx_facts import read_facts
from edgevision.models.store import sha256_of

# Class names shown in full up to this many; beyond, the first ones and a count.
SHOWN_NAMES = 20


def inspect_model(path: Path, family: str | None = None, labels: Path | None = None) -> dict[str, Any]:
    """The file's facts, and the family it was recognised as with its reading (or why not)."""
    facts = read_facts(path)
    report: dict[str, Any] = {
        "file": str(path),
        "opset": facts.opset,
        "producer": facts.producer or None,
        "inputs": [i.describe() for i in facts.inputs],
        "outputs": [o.describe() for o in facts.outputs],
        "metadata_keys": sorted(facts.metadata),
    }
    builtin = manifest_for_file(path)
    if builtin is not None:
        report["builtin_manifest"] = builtin.name
    if builtin is not None and family is None and labels is None:
        # What `detect` and `run` do with this file: the built-in manifest that names it.
        digest = sha256_of(path)
        matches = builtin.sha256 == digest
        report["sha256"] = {"file": digest, "manifest": builtin.sha256, "matches": matches}
        family_name, layout, spec = builtin.family, builtin.layout, builtin.input
        why = f"the built-in manifest {builtin.name} names this file ({builtin.file})" + (
            "" if matches else "; its SHA-256 differs from the manifest's (run by path, it is reported as not verified)"
        )
        names, labels_from = list(builtin.labels), f"the built-in manifest {builtin.name}"
    else:
        try:
            found = recognise_file(path, family, labels)
        except LabelsNeededError as exc:
            # The family is known; only the class names are missing.
            recognition, names, labels_from = exc.recognition, [], f"unknown: {exc}"
        except UnrecognisedModelError as exc:
            return {**report, "recognised": False, "why_not": str(exc)}
        else:
            recognition, names, labels_from = found.recognition, list(found.manifest.labels), found.labels_from
        family_name, layout, spec, why = recognition.family, recognition.layout, recognition.input, recognition.reason
    image = facts.image_input
    if image is None:
        return {**report, "recognised": False, "why_not": f"{path.name}: no 4-D image input"}
    batch = image.shape[0]
    if isinstance(batch, int) and not FAMILIES[family_name].rewrites_batch:
        batches = f"{batch} only (a fixed batch; export with a dynamic batch to batch frames)"
    elif isinstance(batch, int):
        batches = f"any (fixed at {batch} in the file; the module makes a dynamic-batch copy)"
    else:
        batches = "any (dynamic)"
    return {
        **report,
        "recognised": True,
        "family": family_name,
        "layout": layout,
        "why": why,
        "input": {
            "name": image.name,
            "width": spec.width,
            "height": spec.height,
            "channel_order": spec.channel_order,
            "resize": spec.resize,
            "scale": spec.normalization.scale,
            "mean": list(spec.normalization.mean),
            "std": list(spec.normalization.std),
        },
        "batch": {"dimension": batch, "batches": batches},
        "classes": {
            "count": len(names) or None,
            "from": labels_from,
            "names": names
            if len(names) <= SHOWN_NAMES
            else [*names[:SHOWN_NAMES], f"... {len(names) - SHOWN_NAMES} more"],
        },
    }


def as_text(report: dict[str, Any]) -> str:
    lines = [
        f"file: {report['file']}",
        f"opset: {report['opset']}   producer: {report['producer'] or 'unknown'}",
        "inputs: " + "; ".join(report["inputs"]),
        "outputs: " + "; ".join(report["outputs"]),
        "metadata keys: " + (", ".join(report["metadata_keys"]) or "none"),
    ]
    if "builtin_manifest" in report:
        lines.append(f"built-in manifest: {report['builtin_manifest']} (names this file; it pins its SHA-256)")
    if not report["recognised"]:
        lines.append(f"family: not recognised: {report['why_not']}")
        return "\n".join(lines)
    spec = report["input"]
    layout = f" (layout {report['layout']})" if report["layout"] else ""
    norm = f"scale {spec['scale']:.6g}" + (
        f", mean {spec['mean']}, std {spec['std']}"
        if spec["mean"] != [0.0, 0.0, 0.0] or spec["std"] != [1.0, 1.0, 1.0]
        else ""
    )
    classes = report["classes"]
    lines += [
        f"family: {report['family']}{layout}",
        f"why: {report['why']}",
        f"input: {spec['name']} {spec['width']}x{spec['height']} {spec['channel_order']}, {spec['resize']}, {norm}",
        f"batch: {report['batch']['batches']}",
        f"classes: {classes['count']} from {classes['from']}: {', '.join(classes['names'])}"
        if classes["count"]
        else f"classes: {classes['from']}",
    ]
    return "\n".join(lines)
