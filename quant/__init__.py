"""b-bit quantization of tensors: round-to-nearest, MSE clipping, GPTQ, KV cache.

Flat public API; everything works on torch tensors (CPU or CUDA) in float32.

Examples
--------
>>> import torch, quant
>>> cfg = quant.QuantConfig(bits=3, granularity="group", group_size=4)
>>> quant.fake_quantize(torch.tensor([[0.9, -3.0, 0.2, 1.6]]), cfg)
tensor([[ 1., -3.,  0.,  2.]])
"""

from ._clipping import mse_clip_search
from ._config import GRANULARITIES, QuantConfig
from ._gptq import GPTQError, GPTQResult, SingularHessianWarning, check_target_damp, gptq_quantize
from ._hessian import HessianAccumulator
from ._kv import KVQuantConfig, fake_quantize_kv, quantize_kv
from ._packing import pack_codes, packed_nbytes, unpack_codes
from ._rtn import rtn_quantize
from ._tensor import PackedTensor, QuantizedTensor, quantize
from ._uniform import QuantParams, code_range, compute_qparams, fake_quantize, num_levels

__all__ = [
    "GRANULARITIES",
    "GPTQError",
    "GPTQResult",
    "HessianAccumulator",
    "KVQuantConfig",
    "PackedTensor",
    "QuantConfig",
    "QuantParams",
    "QuantizedTensor",
    "SingularHessianWarning",
    "check_target_damp",
    "code_range",
    "compute_qparams",
    "fake_quantize",
    "fake_quantize_kv",
    "gptq_quantize",
    "mse_clip_search",
    "num_levels",
    "pack_codes",
    "packed_nbytes",
    "quantize",
    "quantize_kv",
    "rtn_quantize",
    "unpack_codes",
]
