"""Shared set-up of the SmolLM2 ablation scripts: model, pydoc windows, FP reference."""

from __future__ import annotations

import argparse
import dataclasses

import torch

import integrations as I


@dataclasses.dataclass
class Setup:
    """The float model, its evaluation and calibration windows, and the FP reference."""

    base: torch.nn.Module
    eval_windows: torch.Tensor
    calibration: torch.Tensor
    fp_ppl: float
    reference: torch.Tensor

    def evaluate(self, model) -> dict:
        """PPL, KLD and top-1 of ``model`` against the FP reference."""
        return I.evaluate(model, self.eval_windows, fp_logits=self.reference, progress=False)


def parse_and_load(description: str, eval_windows: int, add_arguments=None) -> tuple[argparse.Namespace, Setup]:
    """Parse ``--eval-windows``/``--threads`` (and the script's own options), load everything."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--eval-windows", type=int, default=eval_windows,
                   help=f"evaluation windows of 2048 tokens (default {eval_windows})")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    if add_arguments is not None:
        add_arguments(p)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    base, tok = I.load_model(), I.load_tokenizer()
    ev = I.tokenize_windows(I.load_text(split="eval"), tok, seqlen=2048, max_windows=args.eval_windows)
    cal = I.tokenize_windows(I.load_text(split="calibration"), tok, seqlen=512, max_windows=8)
    fp = I.evaluate(base, ev, keep_logits=True, progress=False)
    return args, Setup(base, ev, cal, fp["ppl"], fp.pop("logprobs"))
