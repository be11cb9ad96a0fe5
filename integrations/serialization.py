"""Save and reload rotated and quantized models.

Two formats:

* :func:`save_rotated_pretrained` -- a rotated floating-point model as a plain
  Hugging Face checkpoint (``config.json`` + ``model.safetensors``): rotated
  weights, RMSNorms with unit weights. ``transformers`` loads it with
  ``AutoModelForCausalLM.from_pretrained`` without this library and gives the
  same logits. Only rotations fused into weights can be stored that way (R1,
  R2, without zero-padding); online rotations (R3, R4) need our code.
* :func:`save_quantized` / :func:`load_quantized` -- a quantized model (any
  rotations): ``config.json`` (the model's HF config), ``hadamard_quant.json``
  (format version, rotation recipe, per-site activation/KV quantizer settings
  and clip ratios, per-weight quantizer configs, checksums) and
  ``model.safetensors`` (bit-packed weight codes, scales, zero points, GPTQ
  permutations, and the remaining float tensors). Online rotation matrices are
  not stored: they are rebuilt from the recipe and checked against the
  recorded checksums.

Every file is written to a temporary directory next to the target, which is
then renamed into place, so a crash never leaves a half-written checkpoint.
A damaged file or one that does not match its description raises
:class:`CheckpointError`.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import torch
from torch import nn

import quant

from ._expansion import ExpandedRMSNorm
from ._families import family_of
from ._quantized import QuantizationConfig, QuantizedLinear, install_quantizers, quantized_linears, quantizer_sites
from ._rotation import RotationConfig, rotate_model
from ._transforms import OnlineRotation

__all__ = ["CheckpointError", "FORMAT_VERSION", "save_rotated_pretrained", "save_quantized", "load_quantized"]

FORMAT = "hadamard-quant"
FORMAT_VERSION = 2  # 2: sites carry keep_first (KV attention sinks); 1 is read as keep_first=0
_READABLE_VERSIONS = (1, 2)
META_FILE = "hadamard_quant.json"
TENSOR_FILE = "model.safetensors"


class CheckpointError(ValueError):
    """A checkpoint is missing, damaged, or does not match its description."""


# ---------------------------------------------------------------- plain HF checkpoint


def save_rotated_pretrained(model: nn.Module, directory: str | os.PathLike) -> Path:
    """Save a rotated FP model as a standard Hugging Face checkpoint.

    The RMSNorm weights were fused into the linears by the rotation; they are
    written as ones, so a plain ``LlamaForCausalLM`` (or Qwen2, Mistral, ...)
    computes the same function.

    Parameters
    ----------
    model : transformers.PreTrainedModel
        Rotated by :func:`integrations.rotate_model` with online rotations off
        (``RotationConfig(r3=False, r4=False)``) and no zero-padding, not
        quantized. An unrotated model is saved as it is.
    directory : path
        Created or replaced atomically.

    Returns
    -------
    pathlib.Path
        The directory.

    Raises
    ------
    ValueError
        The model has online rotations, padded dimensions or quantized layers,
        which plain transformers cannot run.

    Examples
    --------
    >>> import tempfile, torch, transformers
    >>> from integrations import RotationConfig, rotate_model
    >>> cfg = transformers.LlamaConfig(hidden_size=48, intermediate_size=96, num_hidden_layers=1,
    ...     num_attention_heads=2, num_key_value_heads=1, head_dim=24, vocab_size=40)
    >>> model = rotate_model(transformers.LlamaForCausalLM(cfg).eval(), RotationConfig(r3=False, r4=False))
    >>> path = save_rotated_pretrained(model, tempfile.mkdtemp() + "/rotated")
    >>> plain = transformers.AutoModelForCausalLM.from_pretrained(path).eval()
    >>> ids = torch.tensor([[1, 2, 3]])
    >>> bool((plain(ids).logits - model(ids).logits).abs().max() < 1e-4)
    True
    """
    family_of(model)
    state = model.state_dict()
    for name, module in model.named_modules():
        _check_plain(name, module)
        if isinstance(module, ExpandedRMSNorm):
            state[f"{name}.weight"] = torch.ones(module.size, dtype=model.dtype, device=model.device)

    # Written directly rather than by model.save_pretrained, which refuses models loaded from
    # GGUF (dequantized to float, but still flagged as quantized).
    config = _float_config(model)

    def write(tmp: Path) -> None:
        from safetensors.torch import save_file

        config.save_pretrained(tmp)
        tensors = {k: v.detach().to("cpu").contiguous() for k, v in state.items()}
        save_file(tensors, str(tmp / TENSOR_FILE), metadata={"format": "pt"})

    return _write_directory(directory, write)


def _check_plain(name: str, module: nn.Module) -> None:
    if isinstance(module, QuantizedLinear):
        raise ValueError(f"{name} is quantized; save quantized models with save_quantized")
    if isinstance(module, OnlineRotation):
        raise ValueError(
            f"{name} is an online rotation (r1='online', R3 or R4), which plain transformers cannot run; rotate "
            "with RotationConfig(r1=True, r3=False, r4=False) for a standard checkpoint, or use save_quantized"
        )
    if isinstance(module, ExpandedRMSNorm) and module.order != module.size:
        raise ValueError(
            f"{name} normalizes a stream zero-padded from {module.size} to {module.order}; a standard "
            "checkpoint cannot express that (use save_quantized, or a buildable hidden size)"
        )


# ---------------------------------------------------------------- quantized checkpoint


def save_quantized(model: nn.Module, directory: str | os.PathLike) -> Path:
    """Save a model quantized by :func:`integrations.quantize_model` (rotated or not).

    Parameters
    ----------
    model : transformers.PreTrainedModel
        With :class:`QuantizedLinear` projections (see :func:`quantize_model`).
    directory : path
        Created or replaced atomically.

    Returns
    -------
    pathlib.Path
        The directory.

    Raises
    ------
    ValueError
        The model has no quantizers.
    """
    from safetensors.torch import save_file

    family_of(model)
    sites = quantizer_sites(model)  # raises if not quantized
    plan = getattr(model, "hadamard_rotation", None)
    tensors, weights = {}, {}
    for key, module in _weight_keys(model).items():
        if module.quantized is None:
            continue
        packed = module.quantized.pack()
        tensors[f"{key}.codes"] = packed.data
        tensors[f"{key}.scale"] = packed.scale
        if packed.zero_data is not None:
            tensors[f"{key}.zero"] = packed.zero_data
        if packed.perm is not None:
            tensors[f"{key}.perm"] = packed.perm
        weights[key] = {"shape": list(packed.shape), "config": dataclasses.asdict(packed.config),
                        "dtype": str(module.weight.dtype).removeprefix("torch.")}
    online = {}
    for name, value in model.state_dict().items():
        if name in weights:
            continue
        if _is_online_matrix(model, name):
            online[name] = _digest(value)
            continue
        tensors[name] = value
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "rotation": None if plan is None else dataclasses.asdict(plan.config),
        "sites": {name: _site_settings(q) for name, q in sites.items()},
        "weights": weights,
        "online_rotations": online,
    }

    def write(tmp: Path) -> None:
        _float_config(model).save_pretrained(tmp)
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp / TENSOR_FILE),
                  metadata={"format": FORMAT})
        meta["tensor_file_sha256"] = _file_digest(tmp / TENSOR_FILE)
        meta["config_file_sha256"] = _file_digest(tmp / "config.json")
        (tmp / META_FILE).write_text(json.dumps(meta, indent=1, sort_keys=True))

    return _write_directory(directory, write)


def load_quantized(directory: str | os.PathLike, *, device: str | torch.device = "cpu") -> nn.Module:
    """Rebuild a model saved by :func:`save_quantized`; it computes exactly what the saved one did.

    Parameters
    ----------
    directory : path
    device : str or torch.device
        Where to put the model.

    Returns
    -------
    transformers.PreTrainedModel
        In eval mode, with the same rotations, quantized weights and
        quantizer settings.

    Raises
    ------
    CheckpointError
        A file is missing or damaged (checksum), the format version is
        unknown, or tensors do not match the description (missing, extra,
        wrong shape, rotation matrices that differ from the recipe).
    """
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoModelForCausalLM

    directory = Path(directory)
    meta = _read_meta(directory)
    tensor_path = directory / TENSOR_FILE
    if not tensor_path.is_file():
        raise CheckpointError(f"{tensor_path}: missing")
    if _file_digest(tensor_path) != meta.get("tensor_file_sha256"):
        raise CheckpointError(f"{tensor_path}: checksum mismatch, the file is damaged or not the one described")
    config_path = directory / "config.json"
    # checkpoints written before the config was checksummed have no such field
    if "config_file_sha256" in meta and (not config_path.is_file() or _file_digest(config_path) != meta["config_file_sha256"]):
        raise CheckpointError(f"{config_path}: missing or changed since the checkpoint was written")
    try:
        tensors = load_file(str(tensor_path))
        config = AutoConfig.from_pretrained(directory)
    except Exception as exc:  # safetensors/transformers raise many types for damaged files
        raise CheckpointError(f"{directory}: cannot read the checkpoint ({type(exc).__name__}: {exc})") from exc
    model = _skeleton(AutoModelForCausalLM, config, meta)
    _load_weights(model, tensors, meta)
    _check_online(model, meta)
    return model.to(device).eval()


def _skeleton(auto, config, meta: dict) -> nn.Module:
    """The model structure of the checkpoint: rotated and wrapped, with random weights."""
    dtype = getattr(config, "dtype", None) or torch.float32
    dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype
    with torch.random.fork_rng():  # the random init is overwritten; keep the caller's RNG untouched
        model = auto.from_config(config).to(dtype).eval()
    if meta["rotation"] is not None:
        try:
            rotation = RotationConfig(**meta["rotation"])
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"invalid rotation recipe {meta['rotation']!r}: {exc}") from exc
        rotate_model(model, rotation)
    install_quantizers(model, QuantizationConfig(weights=None, activations=None, kv=None))
    sites = quantizer_sites(model)
    if set(sites) != set(meta["sites"]):
        raise CheckpointError(f"quantizer sites differ from the model's: {sorted(set(sites) ^ set(meta['sites']))[:4]}")
    for name, settings in meta["sites"].items():
        try:
            for attr in ("bits", "symmetric", "group_size", "clip_ratio"):
                setattr(sites[name], attr, settings[attr])
            sites[name].keep_first = settings.get("keep_first", 0)  # absent from format version 1
            if settings["bits"] is not None:
                sites[name].config()  # validates
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"site {name}: invalid quantizer settings {settings!r}: {exc}") from exc
    return model


def _load_weights(model: nn.Module, tensors: dict, meta: dict) -> None:
    linears = _weight_keys(model)
    used = set()
    for key, info in meta["weights"].items():
        if key not in linears:
            raise CheckpointError(f"{key}: no such quantized weight in the model")
        packed = _packed(tensors, key, info)
        used.update(k for k in tensors if k.startswith(f"{key}."))
        qt = packed.unpack()
        if tuple(qt.shape) != tuple(linears[key].weight.shape):
            raise CheckpointError(f"{key}: shape {tuple(qt.shape)} does not match the model's {tuple(linears[key].weight.shape)}")
        linears[key].set_quantized_weight(qt)
    state = {k: v for k, v in tensors.items() if k not in used}
    expected = {k for k in model.state_dict() if k not in meta["weights"] and k not in meta["online_rotations"]}
    missing, unexpected = expected - set(state), set(state) - expected
    if missing or unexpected:
        raise CheckpointError(f"tensors do not match the model: missing {sorted(missing)[:4]}, unexpected {sorted(unexpected)[:4]}")
    own = model.state_dict()
    for k, v in state.items():
        if own[k].shape != v.shape:
            raise CheckpointError(f"{k}: shape {tuple(v.shape)} does not match the model's {tuple(own[k].shape)}")
    model.load_state_dict(state, strict=False)


def _packed(tensors: dict, key: str, info: dict) -> quant.PackedTensor:
    try:
        cfg = quant.QuantConfig(**info["config"])
        return quant.PackedTensor(
            data=tensors[f"{key}.codes"], scale=tensors[f"{key}.scale"], zero_data=tensors.get(f"{key}.zero"),
            perm=tensors.get(f"{key}.perm"), shape=tuple(info["shape"]), config=cfg)
    except KeyError as exc:
        raise CheckpointError(f"{key}: tensor {exc} missing from {TENSOR_FILE}") from exc
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{key}: invalid quantizer description {info!r}: {exc}") from exc


def _check_online(model: nn.Module, meta: dict) -> None:
    state = model.state_dict()
    for name, digest in meta["online_rotations"].items():
        if name not in state:
            raise CheckpointError(f"online rotation {name} of the checkpoint is not in the rebuilt model")
        if _digest(state[name]) != digest:
            raise CheckpointError(f"online rotation {name} rebuilt from the recipe differs from the saved one")


# ---------------------------------------------------------------- helpers


def _float_config(model: nn.Module):
    """The model's HF config without the quantization flag a GGUF load leaves (weights are float)."""
    config = copy.deepcopy(model.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    return config


def _site_settings(q) -> dict:
    return {"bits": q.bits, "symmetric": bool(q.symmetric), "group_size": q.group_size,
            "clip_ratio": float(q.clip_ratio), "keep_first": int(q.keep_first)}


def _weight_keys(model: nn.Module) -> dict[str, QuantizedLinear]:
    """Every :class:`QuantizedLinear` by the state-dict key of its weight."""
    ours = {id(m) for m in quantized_linears(model).values()}
    return {f"{name}.weight": m for name, m in model.named_modules() if id(m) in ours}


def _is_online_matrix(model: nn.Module, name: str) -> bool:
    owner, _, leaf = name.rpartition(".")
    return leaf == "matrix" and isinstance(model.get_submodule(owner), OnlineRotation)


def _digest(t: torch.Tensor) -> str:
    data = t.detach().to("cpu").contiguous()
    return f"{data.dtype}:{tuple(data.shape)}:" + hashlib.sha256(data.view(torch.uint8).numpy().tobytes()).hexdigest()


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def _read_meta(directory: Path) -> dict:
    path = directory / META_FILE
    if not path.is_file():
        raise CheckpointError(f"{path}: missing (not a checkpoint written by save_quantized)")
    try:
        meta = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a {FORMAT} description")
    if meta.get("format_version") not in _READABLE_VERSIONS:
        raise CheckpointError(
            f"{path}: format version {meta.get('format_version')!r}; this code reads {list(_READABLE_VERSIONS)}"
        )
    for field in ("rotation", "sites", "weights", "online_rotations", "tensor_file_sha256"):
        if field not in meta:
            raise CheckpointError(f"{path}: field {field!r} missing")
    return meta


#: what a directory written by this module holds (``generation_config.json``: HF's
#: ``save_pretrained`` of some configs); only such a directory is replaced
CHECKPOINT_FILES = frozenset({"config.json", "generation_config.json", TENSOR_FILE, META_FILE})


def check_replaceable(directory: str | os.PathLike) -> Path:
    """``directory`` as a Path, if saving there replaces nothing but a checkpoint.

    Raises
    ------
    FileExistsError
        It exists and is not a directory, or holds files a checkpoint does not
        (it is never deleted to make room).
    """
    target = Path(directory)
    if target.exists() or target.is_symlink():
        if not target.is_dir() or target.is_symlink():
            raise FileExistsError(f"{target} exists and is not a directory; choose another path")
        foreign = sorted(p.name for p in target.iterdir() if p.name not in CHECKPOINT_FILES)
        if foreign:
            raise FileExistsError(
                f"{target} exists and holds files that are not part of a checkpoint ({', '.join(foreign[:3])}"
                f"{', ...' if len(foreign) > 3 else ''}); only an empty directory or a previous checkpoint "
                "is replaced: choose another path or remove it"
            )
    return target


def _write_directory(directory: str | os.PathLike, write) -> Path:
    """Run ``write(tmp)`` in a fresh directory next to ``directory``, then swap it into place."""
    target = check_replaceable(directory)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    old = None
    try:
        write(tmp)
        _publish_modes(tmp)
        check_replaceable(target)  # again: something may have appeared while writing
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
            os.replace(target, old / "previous")
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and (old / "previous").exists() and not target.exists():
            os.replace(old / "previous", target)  # put the previous checkpoint back
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    return target


def _publish_modes(directory: Path) -> None:
    """Give the private temporary directory (``mkdtemp``: 0700) and its files the modes a
    plain ``mkdir``/``open`` would have had under the process's umask."""
    mask = current_umask()
    os.chmod(directory, 0o777 & ~mask)
    for path in directory.iterdir():
        if path.is_file():
            os.chmod(path, 0o666 & ~mask)


def current_umask() -> int:
    """The process's umask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
