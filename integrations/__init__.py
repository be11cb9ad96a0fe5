"""Rotate and quantize Hugging Face LLMs of any hidden size (W3A3KV3), and evaluate them.

>>> import integrations
>>> integrations.RotationConfig().expansion
'pad'
"""

from ._calibration import LayerInputs, grid_search_clip_ratios, capture_layer_inputs, quantize_model, run_layer
from ._eval import evaluate, load_text, tokenize_windows
from ._expansion import DimensionError, ExpandedRMSNorm, plan_dimension
from ._families import SUPPORTED_MODEL_TYPES, UnsupportedModelError, family_of
from ._loading import default_model_path, load_model, load_tokenizer
from ._quantized import (
    GPTQ_TARGETS,
    ActivationQuantizer,
    QuantizationConfig,
    QuantizedLinear,
    install_quantizers,
    quantized_linears,
    quantizer_sites,
    weight_bits,
)
from ._rotation import RotatedLinear, RotationConfig, rotate_model
from ._smoothing import smooth_model
from . import gbs
from .serialization import CheckpointError, load_quantized, save_quantized, save_rotated_pretrained

__all__ = [
    "CheckpointError",
    "gbs",
    "load_quantized",
    "save_quantized",
    "save_rotated_pretrained",
    "ActivationQuantizer",
    "DimensionError",
    "ExpandedRMSNorm",
    "GPTQ_TARGETS",
    "LayerInputs",
    "QuantizationConfig",
    "QuantizedLinear",
    "RotatedLinear",
    "RotationConfig",
    "SUPPORTED_MODEL_TYPES",
    "UnsupportedModelError",
    "grid_search_clip_ratios",
    "capture_layer_inputs",
    "default_model_path",
    "evaluate",
    "family_of",
    "install_quantizers",
    "load_model",
    "load_text",
    "load_tokenizer",
    "plan_dimension",
    "quantize_model",
    "quantized_linears",
    "quantizer_sites",
    "rotate_model",
    "smooth_model",
    "run_layer",
    "tokenize_windows",
    "weight_bits",
]
