"""Fused vs online rotation of the RMSNorm outputs at 3-bit activations (SmolLM2-135M).

QuaRot fuses each RMSNorm weight ``g`` into the linears that read the norm and
rotates the residual stream (R1), so the quantized signal is ``H x`` with
``x = h / rms(h)``, and the weight ``W diag(g) H^T`` amplifies the (white)
quantization noise wherever ``g`` is large.  ``RotationConfig(r1="online")``
keeps ``g`` in the norm and rotates its output online, so the quantized signal
is ``H (x * g)`` and the weight is ``W H^T``.

Two measurements, both printed:

1. Per layer, on captured inputs of ``input_layernorm`` (read by q/k/v) and
   ``post_attention_layernorm`` (read by gate/up): relative output error
   ``||(Q(z) - z) ... W^T||^2 / ||W (x * g)||^2`` of per-token asymmetric
   3-bit quantization of ``z``, for both placements and a few clip ratios.
2. Perplexity of the whole model with every activation and KV site at 3 bits
   (weights in float, one clip ratio for all sites), for both placements.

Run: ``python benchmarks/norm_input_rotation.py [--bits 3] [--eval-windows 1]``
"""

from __future__ import annotations

import argparse
import copy

import torch

import hadamard
import integrations
import quant


def asym_quantize(z: torch.Tensor, bits: int, clip: float) -> torch.Tensor:
    """Per-row asymmetric round-to-nearest with the range clipped to ``clip`` of min/max."""
    return quant.fake_quantize(z, quant.QuantConfig(bits=bits, granularity="token", symmetric=False, clip_ratio=clip))


def capture_norm_inputs(model, windows, layers):
    """Hidden states entering the two norms of each listed layer."""
    captured, handles = {}, []
    for i in layers:
        for kind in ("input_layernorm", "post_attention_layernorm"):
            norm = getattr(model.model.layers[i], kind)

            def hook(module, args, key=(i, kind)):
                captured.setdefault(key, []).append(args[0].detach()[0])

            handles.append(norm.register_forward_pre_hook(hook))
    with torch.no_grad():
        for row in windows:
            model(row[None], use_cache=False)
    for h in handles:
        h.remove()
    return {k: torch.cat(v).double() for k, v in captured.items()}


def layer_errors(model, captured, bits, clips):
    n = model.config.hidden_size
    H = torch.from_numpy(hadamard.get(n, normalized=True)).double()
    for (i, kind), h in captured.items():
        layer = model.model.layers[i]
        norm = getattr(layer, kind)
        g = norm.weight.detach().double()
        if kind == "input_layernorm":
            W = torch.cat([layer.self_attn.q_proj.weight, layer.self_attn.k_proj.weight, layer.self_attn.v_proj.weight])
        else:
            W = torch.cat([layer.mlp.gate_proj.weight, layer.mlp.up_proj.weight])
        W = W.detach().double()
        x = h / (h.pow(2).mean(-1, keepdim=True) + norm.variance_epsilon).sqrt()
        reference = (x * g) @ W.T
        power = reference.pow(2).sum()
        cells = []
        for clip in clips:
            z = x @ H.T  # fused: the weight is W diag(g) H^T
            fused = (((asym_quantize(z, bits, clip) - z) @ H) * g) @ W.T
            z = (x * g) @ H.T  # online: the weight is W H^T
            online = ((asym_quantize(z, bits, clip) - z) @ H) @ W.T
            cells.append(f"clip {clip}: fused {float(fused.pow(2).sum() / power):.4f} online {float(online.pow(2).sum() / power):.4f}")
        print(f"layer {i:2d} {kind:25s} " + " | ".join(cells), flush=True)


def model_ppl(base, mode, bits, ev, reference, clips):
    model = copy.deepcopy(base)
    integrations.rotate_model(model, integrations.RotationConfig(r1=True if mode == "fused" else mode))
    integrations.quantize_model(model, integrations.QuantizationConfig(
        weights=None, activations=quant.QuantConfig(bits=bits, granularity="token", symmetric=False),
        kv=quant.KVQuantConfig(bits=bits)), progress=False)
    sites = integrations.quantizer_sites(model)
    for clip in clips:
        for q in sites.values():
            q.clip_ratio = clip
        r = integrations.evaluate(model, ev, fp_logits=reference, progress=False)
        print(f"r1={mode:6s} A{bits}KV{bits} (weights float) clip {clip}: PPL {r['ppl']:.2f} KLD {r['kld']:.3f} "
              f"top-1 {r['top1']:.3f}", flush=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bits", type=int, default=3)
    p.add_argument("--eval-windows", type=int, default=1, help="2048-token evaluation windows")
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    tok = integrations.load_tokenizer()
    base = integrations.load_model()
    cal = integrations.tokenize_windows(integrations.load_text(split="calibration"), tok, seqlen=512, max_windows=2)
    print(f"== 1. relative output error of {args.bits}-bit per-token inputs (1024 calibration tokens)")
    layers = (0, 3, 8, 15, 22, base.config.num_hidden_layers - 1)
    layer_errors(base, capture_norm_inputs(base, cal, layers), args.bits, (1.0, 0.8, 0.65))
    ev = integrations.tokenize_windows(integrations.load_text(split="eval"), tok, seqlen=2048, max_windows=args.eval_windows)
    fp = integrations.evaluate(base, ev, keep_logits=True, progress=False)
    print(f"== 2. whole model, {ev.numel()} evaluation tokens; FP PPL {fp['ppl']:.2f}")
    for mode in ("fused", "online"):
        model_ppl(base, mode, args.bits, ev, fp["logprobs"], (1.0, 0.8))


if __name__ == "__main__":
    main()
