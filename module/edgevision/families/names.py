"""The detector families the module knows, by the name configuration and manifests use."""

FAMILY_NAMES: tuple[str, ...] = ("yolox", "ultralytics", "end2end", "detr")
