"""Session and provider options: TensorRT profiles, caches, GPU-PV-friendly CUDA settings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgevision.detector.load import profile_for
from edgevision.inference.options import EngineConfig, padded_batch_sizes, provider_options, tensorrt_profile
from edgevision.inference.providers import CUDA, TENSORRT, plan_providers
from edgevision.models.manifest import InputSpec
from edgevision.models.onnx_facts import read_facts


def test_padded_batch_sizes() -> None:
    assert padded_batch_sizes(1) == [1]
    assert padded_batch_sizes(8) == [1, 2, 4, 8]
    assert padded_batch_sizes(6) == [1, 2, 4, 6]


def test_tensorrt_gets_one_profile_for_every_padded_batch_and_a_cache(tmp_path: Path) -> None:
    profile = tensorrt_profile([("images", [3, 416, 416])], padded_batch_sizes(8))
    assert profile == ("images:1x3x416x416", "images:8x3x416x416", "images:8x3x416x416")
    options = provider_options(EngineConfig(tensorrt_profile=profile, tensorrt_cache_dir=tmp_path), TENSORRT)
    assert options["trt_profile_min_shapes"] == "images:1x3x416x416"
    assert options["trt_profile_opt_shapes"] == options["trt_profile_max_shapes"] == "images:8x3x416x416"
    assert options["trt_engine_cache_path"] == options["trt_timing_cache_path"] == str(tmp_path)
    assert options["trt_engine_cache_enable"] and options["trt_timing_cache_enable"]


def test_the_profile_is_read_from_the_model_file(tmp_path: Path) -> None:
    def model(batch: str | int) -> Path:
        graph = helper.make_graph(
            [helper.make_node("Relu", ["images"], ["out"])],
            "m",
            [helper.make_tensor_value_info("images", TensorProto.FLOAT, [batch, 3, 32, 48])],
            [helper.make_tensor_value_info("out", TensorProto.FLOAT, [batch, 3, 32, 48])],
            [numpy_helper.from_array(np.zeros(1, np.float32), "unused")],
        )
        path = tmp_path / f"m{batch}.onnx"
        onnx.save(helper.make_model(graph), str(path))
        return path

    assert profile_for(read_facts(model("N")), 4) == ("images:1x3x32x48", "images:4x3x32x48", "images:4x3x32x48")
    # A fixed batch is the only shape there is.
    assert profile_for(read_facts(model(1)), 4) == ("images:1x3x32x48",) * 3


def test_the_profile_covers_every_input_and_sizes_the_export_left_open(tmp_path: Path) -> None:
    """A DETR deployment export's sizes input shares the batch; a dynamic Ultralytics export leaves
    height and width open, and TensorRT is given the model's own size for them."""
    graph = helper.make_graph(
        [helper.make_node("Relu", ["images"], ["out"])],
        "m",
        [
            helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, "height", "width"]),
            helper.make_tensor_value_info("orig_target_sizes", TensorProto.INT64, ["N", 2]),
        ],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", 3, "height", "width"])],
    )
    path = tmp_path / "detr.onnx"
    onnx.save(helper.make_model(graph), str(path))
    spec = InputSpec(width=640, height=480)
    low, opt, high = profile_for(read_facts(path), 4, spec)
    assert low == "images:1x3x480x640,orig_target_sizes:1x2"
    assert opt == high == "images:4x3x480x640,orig_target_sizes:4x2"


def test_cuda_options_avoid_what_fails_under_gpu_pv() -> None:
    options = provider_options(EngineConfig(gpu_mem_limit_mb=1024, device_id=0), CUDA, cuda_graph=True)
    assert options["cudnn_conv_algo_search"] == "HEURISTIC" and options["arena_extend_strategy"] == "kSameAsRequested"
    assert options["gpu_mem_limit"] == 1024 * 2**20 and options["enable_cuda_graph"] == "1"


def test_tensorrt_is_not_offered_for_frames_of_any_size() -> None:
    plan = plan_providers([TENSORRT, CUDA], {TENSORRT: None, CUDA: None}, frames_in=True)
    assert plan.candidates == [CUDA] and "any height and width" in plan.dropped[TENSORRT]
