"""Model manifests, model files and the derived copies of a graph."""

from edgevision.models.dynbatch import DynamicBatchError, make_dynamic_batch
from edgevision.models.manifest import (
    ManifestError,
    ModelManifest,
    available_manifests,
    find_manifest,
    load_manifest_file,
)
from edgevision.models.store import (
    MODEL_DIR_ENV,
    ModelIntegrityError,
    ModelUnavailableError,
    ResolvedModel,
    default_model_dir,
    download_model,
    resolve_model,
    sha256_of,
)
from edgevision.models.variants import Variant, VariantError, dynamic_batch_path, variant_path

__all__ = [
    "MODEL_DIR_ENV",
    "DynamicBatchError",
    "ManifestError",
    "ModelIntegrityError",
    "ModelManifest",
    "ModelUnavailableError",
    "ResolvedModel",
    "Variant",
    "VariantError",
    "available_manifests",
    "default_model_dir",
    "download_model",
    "dynamic_batch_path",
    "find_manifest",
    "load_manifest_file",
    "make_dynamic_batch",
    "resolve_model",
    "sha256_of",
    "variant_path",
]
