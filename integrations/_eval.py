"""Texts, token windows and the metrics: perplexity, KL divergence, top-1 agreement.

Perplexity follows the QuaRot/GPTQ convention: the text is cut into
``len // seqlen`` non-overlapping windows of ``seqlen`` tokens and
``PPL = exp(mean NLL)`` over every predicted token.  KL divergence to the
floating-point model and top-1 agreement follow llama.cpp's
``--kl-divergence``: the mean over predicted positions of
``KL(P_fp || P_quant)`` and the fraction of positions whose most likely
token is the same.
"""

from __future__ import annotations

import math
import os

import torch
from torch import nn

from ._calibration import _check_windows, _progress

SPLITS = ("eval", "calibration")
#: Share of the built-in / file text used for calibration (its beginning); the rest is for evaluation.
CALIBRATION_SHARE = 0.3


def load_text(name_or_path: str | os.PathLike | None = None, split: str = "eval") -> str:
    """A text for calibration or evaluation; the two splits never overlap.

    Parameters
    ----------
    name_or_path : str or path, optional
        None or ``"pydoc"``: Python's ``pydoc_data.topics`` (about 465 kB of
        English, always available), topics in sorted order; a path to a text
        file (UTF-8); or ``"wikitext2"`` (WikiText-2 raw via ``datasets``,
        needs the network: test split for ``"eval"``, train for
        ``"calibration"``).
    split : {"eval", "calibration"}
        For pydoc and files, calibration is the first 30% of the text (cut
        at a paragraph boundary) and eval the rest.

    Returns
    -------
    str

    Raises
    ------
    ValueError
        Unknown split or dataset name.
    FileNotFoundError
        A path that does not exist.

    Examples
    --------
    >>> a, b = load_text(split="calibration"), load_text(split="eval")
    >>> len(a) > 100_000 and len(b) > 250_000 and a[-200:] not in b
    True
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if name_or_path is None or name_or_path == "pydoc":
        from pydoc_data.topics import topics

        return _split_text("\n\n".join(topics[k] for k in sorted(topics)), split)
    if str(name_or_path).lower().replace("-", "").replace("_", "") in ("wikitext2", "wikitext2raw"):
        return _wikitext2(split)
    if not os.path.isfile(name_or_path):
        raise FileNotFoundError(
            f"no text file {str(name_or_path)!r}; pass a UTF-8 text file, None/'pydoc' for the built-in text, or 'wikitext2'"
        )
    try:
        with open(name_or_path, encoding="utf-8") as f:
            return _split_text(f.read(), split)
    except UnicodeDecodeError as exc:
        raise ValueError(f"{str(name_or_path)!r} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def _split_text(text: str, split: str) -> str:
    cut = int(len(text) * CALIBRATION_SHARE)
    boundary = text.rfind("\n\n", 0, cut)
    cut = boundary if boundary > 0 else cut
    return text[:cut] if split == "calibration" else text[cut:]


def _wikitext2(split: str) -> str:
    try:
        import datasets
    except ImportError:
        raise ValueError("'wikitext2' needs the `datasets` package (pip install datasets) and the network") from None
    data = datasets.load_dataset("wikitext", "wikitext-2-raw-v1", split="test" if split == "eval" else "train")
    return "\n\n".join(data["text"])


def tokenize_windows(text: str, tokenizer, *, seqlen: int = 2048, max_windows: int | None = None) -> torch.Tensor:
    """Cut a text into non-overlapping windows of ``seqlen`` tokens.

    Parameters
    ----------
    text : str
    tokenizer : transformers tokenizer
    seqlen : int
        Tokens per window (2048 is the QuaRot convention).
    max_windows : int, optional
        Keep only the first windows (all ``len // seqlen`` by default).

    Returns
    -------
    torch.LongTensor
        ``(n_windows, seqlen)``.

    Raises
    ------
    ValueError
        ``seqlen < 2``, ``max_windows < 1``, or a text too short for one window.
    """
    if not isinstance(seqlen, int) or seqlen < 2:
        raise ValueError(f"seqlen must be an integer >= 2, got {seqlen!r}")
    if max_windows is not None and (not isinstance(max_windows, int) or max_windows < 1):
        raise ValueError(f"max_windows must be a positive integer or None, got {max_windows!r}")
    ids = tokenizer(text, return_tensors="pt").input_ids[0]
    n = ids.numel() // seqlen
    if n == 0:
        raise ValueError(
            f"the text has {ids.numel()} tokens, fewer than one window of seqlen={seqlen}; "
            "use a longer text or a smaller seqlen"
        )
    if max_windows is not None:
        n = min(n, max_windows)
    return ids[: n * seqlen].reshape(n, seqlen).clone()


def evaluate(
    model: nn.Module,
    data: torch.Tensor,
    *,
    fp_logits: list[torch.Tensor] | None = None,
    keep_logits: bool = False,
    progress: bool = True,
) -> dict:
    """Perplexity, and KL divergence / top-1 agreement against reference log-probabilities.

    Parameters
    ----------
    model : transformers.PreTrainedModel
    data : torch.LongTensor
        ``(n_windows, seqlen)`` windows from :func:`tokenize_windows`.
    fp_logits : list of torch.Tensor, optional
        The reference model's log-probabilities, ``evaluate(fp_model, data,
        keep_logits=True)["logprobs"]``; enables ``kld`` and ``top1``.
    keep_logits : bool
        Also return this model's log-probabilities (float16, one
        ``(seqlen - 1, vocab)`` tensor per window) under ``"logprobs"``.
    progress : bool
        Progress bar over the windows.

    Returns
    -------
    dict
        ``ppl``, ``nll`` (mean), ``tokens`` (predicted tokens), and ``kld``,
        ``top1`` when ``fp_logits`` is given (else None).

    Raises
    ------
    ValueError
        ``fp_logits`` not matching ``data``; non-finite logits.
    """
    data = _check_windows(data)
    if fp_logits is not None and len(fp_logits) != data.shape[0]:
        raise ValueError(f"fp_logits has {len(fp_logits)} windows, data has {data.shape[0]}")
    device = model.get_input_embeddings().weight.device
    nll = kld = agree = 0.0
    count = 0
    kept = []
    with torch.no_grad():
        for i in _progress(range(data.shape[0]), progress, "evaluating"):
            ids = data[i : i + 1].to(device)
            logits = model(ids, use_cache=False).logits[0, :-1].to(torch.float32)
            if not torch.isfinite(logits).all():
                raise ValueError(f"the model produced non-finite logits on window {i}")
            logp = torch.log_softmax(logits, dim=-1)
            del logits
            target = ids[0, 1:]
            nll += float(-logp.gather(1, target[:, None]).sum())
            count += target.numel()
            if fp_logits is not None:
                ref = fp_logits[i].to(device=device, dtype=torch.float32)
                if ref.shape != logp.shape:
                    raise ValueError(f"fp_logits[{i}] has shape {tuple(ref.shape)}, expected {tuple(logp.shape)}")
                kld += float((ref.exp() * (ref - logp)).sum())
                agree += float((ref.argmax(-1) == logp.argmax(-1)).sum())
            if keep_logits:
                kept.append(logp.to(torch.float16).cpu())
    result = {
        "ppl": math.exp(nll / count),
        "nll": nll / count,
        "tokens": count,
        "kld": kld / count if fp_logits is not None else None,
        "top1": agree / count if fp_logits is not None else None,
    }
    if keep_logits:
        result["logprobs"] = kept
    return result
