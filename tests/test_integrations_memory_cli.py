"""Peak memory of the layer-by-layer path, the CLI's arguments and outputs, and the real model (slow)."""

import copy
import json
import os
import threading
import time

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import quant  # noqa: E402
import integrations  # noqa: E402
from integrations import cli  # noqa: E402
from test_integrations_rotation import tiny  # noqa: E402


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakRSS:
    """Sample the resident set size every millisecond in a thread."""

    def __enter__(self):
        self.base = self.peak = _rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss())
            time.sleep(0.001)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())

    @property
    def increase(self) -> int:
        return self.peak - self.base


def _gptq_model(layers):
    model = tiny("llama", hidden=128, heads=2, kv_heads=1, head_dim=64, intermediate=2048, layers=layers, vocab=64)
    return integrations.rotate_model(model)


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs Linux /proc")
def test_layer_by_layer_peak_memory_is_about_one_layer():
    # GPTQ's down_proj matrices (2048^2) dominate a layer's working set: the float32
    # Hessian and, at once, its float64 copy, Cholesky factor and inverse (96-111 MiB
    # measured for this model). Holding every layer's Hessian at once would add at least
    # 5 x 16 MiB more, and the float64 matrices 5 x 32 MiB each. The peak must stay near
    # one layer's worth, whatever the depth. The RSS increase of the same run varies by
    # 3-18 MiB from one process to the next (allocator and thread-pool state), so the
    # matrices are made large enough to stand well clear of that.
    calibration = torch.randint(0, 64, (4, 64), generator=torch.Generator().manual_seed(0))
    cfg = integrations.QuantizationConfig(weights=quant.QuantConfig(bits=3), method="gptq", act_order=False, mse_clip=False)
    integrations.quantize_model(_gptq_model(1), cfg, calibration=calibration, progress=False)  # warm up (JIT, allocator)
    model = _gptq_model(6)
    one_layer = sum(p.numel() * p.element_size() for p in model.model.layers[0].parameters())
    hessians_one_layer = 8 * (5 * 128**2 + 2048**2)  # float64 copies inside GPTQ
    with PeakRSS() as peak:
        integrations.quantize_model(model, cfg, calibration=calibration, progress=False)
    assert peak.increase < 4 * hessians_one_layer + 2 * one_layer + 16 * 2**20, peak.increase / 2**20


def test_cli_rejects_bad_arguments(capsys):
    for argv in (["--bits", "9"], ["--rows", "fp,gptq"], ["--seqlen", "0"]):
        with pytest.raises(SystemExit):
            cli.parse_args(argv)
    assert "--rows takes" in capsys.readouterr().err
    args = cli.parse_args(["--rows", "fp,ours", "--bits", "4"])
    assert args.rows == ["fp", "ours"] and args.bits == 4 and args.clip == "gbs"
    assert cli.GBS_METHODS[args.clip] == "local"
    for argv in (["--clip", "kl"], ["--gbs-iters", "0"], ["--gbs-windows", "-1"]):
        with pytest.raises(SystemExit):
            cli.parse_args(argv)
    args = cli.parse_args(["--clip", "gbs-faithful", "--gbs-iters", "10"])
    assert args.clip == "gbs-faithful" and args.gbs_iters == 10
    assert {m: cli.GBS_METHODS[m] for m in ("gbs-block", "gbs-kl", "gbs-faithful")} == {
        "gbs-block": "fast", "gbs-kl": "kl", "gbs-faithful": "faithful"}
    assert cli.parse_args(["--clip", "grid"]).clip == "grid"
    rotation, ours = cli.row_configs(3, 64)["ours"]
    assert rotation.r1 == "online" and ours.method == "gptq" and ours.clip_search
    assert ours.gptq_target == "float-input" and cli.parse_args([]).gptq_target == "float-input"
    assert cli.row_configs(3, 64, "quantized-input")["ours"][1].gptq_target == "quantized-input"
    with pytest.raises(SystemExit):
        cli.parse_args(["--gptq-target", "fp"])
    # the sink tokens' K/V: kept by 'ours' on request only, never by the baselines
    assert cli.parse_args([]).kv_keep_first == 0 and ours.kv.keep_first == 0
    assert cli.parse_args(["--kv-keep-first", "2"]).kv_keep_first == 2
    configs = cli.row_configs(3, 64, kv_keep_first=2)
    assert configs["ours"][1].kv.keep_first == 2 and configs["quarot"][1].kv.keep_first == 0
    with pytest.raises(SystemExit):
        cli.parse_args(["--kv-keep-first", "-1"])
    assert "--kv-keep-first must be 0 or more" in capsys.readouterr().err
    assert cli.parse_args([]).smooth_alpha == cli.SMOOTH_ALPHA
    assert cli.parse_args(["--smooth-alpha", "none"]).smooth_alpha is None
    assert cli.row_title("ours", cli.parse_args([])).startswith("ours (smoothing + Hadamard")
    assert cli.row_title("ours", cli.parse_args(["--smooth-alpha", "none"])).startswith("ours (Hadamard")
    assert cli.parse_args(["--smooth-alpha", "0.5"]).smooth_alpha == 0.5
    for bad in ("1.5", "-0.1", "nan", "half"):
        with pytest.raises(SystemExit):
            cli.parse_args(["--smooth-alpha", bad])
        assert "expected a number in [0, 1] or 'none'" in capsys.readouterr().err


def test_cli_table_and_atomic_outputs(tmp_path):
    args = cli.parse_args([])
    results = {
        "fp": dict(ppl=12.0, kld=0.0, top1=1.0, bits_per_weight=32.0, seconds=3.0),
        "quarot": dict(ppl=2.5e5, kld=5.123, top1=0.05, bits_per_weight=3.1, seconds=9.0),
    }
    table = cli.format_table(results, args)
    assert "| FP (float32) | 12.00 | 0.000 | 1.000 | 32.00 | 3 |" in table
    assert "2.5e+05" in table
    model = tiny("llama", hidden=64, heads=4, kv_heads=2, head_dim=16, intermediate=128, layers=1)
    integrations.rotate_model(model)
    integrations.quantize_model(model, integrations.QuantizationConfig.w_a_kv(4, method="rtn"))
    cli.save_outputs(tmp_path, model, {"results": results})
    assert sorted(os.listdir(tmp_path)) == ["model", "report.json"]
    assert json.loads((tmp_path / "report.json").read_text())["results"]["fp"]["ppl"] == 12.0
    assert (tmp_path / "report.json").stat().st_mode & 0o777 == 0o666 & ~integrations.serialization.current_umask()
    reloaded = integrations.load_quantized(tmp_path / "model")  # --out gives a checkpoint that reloads
    ids = torch.randint(0, 64, (1, 12), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(reloaded(ids).logits, model(ids).logits)

    def failing(path):
        with open(path, "w") as f:
            f.write("partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        cli._atomic(str(tmp_path), "report.json", failing)
    assert json.loads((tmp_path / "report.json").read_text())["results"]["fp"]["ppl"] == 12.0
    assert sorted(os.listdir(tmp_path)) == ["model", "report.json"]


def test_cli_reports_bad_paths_and_settings_in_one_line(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    (tmp_path / "out" / "model").mkdir(parents=True)
    (tmp_path / "out" / "model" / "notes.txt").write_text("keep")
    (tmp_path / "emptydir").mkdir()
    for argv, message in (
        (["--seqlen", "1"], "--seqlen must be at least 2"),
        (["--device", "nonsense"], "is not a torch device"),
        (["--out", str(tmp_path / "afile")], "not a directory"),
        (["--out", str(tmp_path / "out")], "not part of a checkpoint"),
    ):
        with pytest.raises(SystemExit):
            cli.parse_args(argv)
        assert message in capsys.readouterr().err
    for argv, message in (
        (["--model", str(tmp_path / "nowhere")], "does not exist"),
        (["--model", str(tmp_path / "nowhere.gguf")], "GGUF file not found"),
        (["--model", str(tmp_path / "emptydir")], "has no config.json"),
    ):
        assert cli.main(argv + ["--no-progress"]) == 2
        err = capsys.readouterr().err
        assert "error: --model" in err and message in err and "Traceback" not in err
    assert (tmp_path / "out" / "model" / "notes.txt").read_text() == "keep"


def test_group_sizes_are_checked_against_the_rotated_widths_before_any_work():
    from integrations._families import layer_linears
    from integrations._quantized import check_weight_groups
    from integrations._rotation import rotated_input_widths

    model = tiny("llama", hidden=90, heads=2, kv_heads=1, head_dim=32, intermediate=136, layers=1)
    for rotation in (integrations.RotationConfig(), integrations.RotationConfig(r1="online"),
                     integrations.RotationConfig(r4=False)):
        rotated = integrations.rotate_model(copy.deepcopy(model), rotation)
        widths = rotated_input_widths(model, rotation)
        assert widths == rotated_input_widths(rotated) == {
            name: m.weight.shape[1] for name, m in layer_linears(rotated.model.layers[0]).items()}
    assert widths["q_proj"] == 92  # no Hadamard order 90: padded
    groups = quant.QuantConfig(bits=3, granularity="group", group_size=16)
    with pytest.raises(ValueError, match=r"q_proj \(92\).*down_proj \(136\).*multiple of 4"):
        check_weight_groups(widths, groups)
    check_weight_groups(widths, groups.replace(group_size=4))
    # the API fails at once too, before it asks for calibration data
    with pytest.raises(ValueError, match="does not divide the input width"):
        integrations.quantize_model(copy.deepcopy(model), integrations.QuantizationConfig(weights=groups), progress=False)


@pytest.mark.slow
def test_real_smollm2_rotated_logits_match():
    pytest.importorskip("gguf")
    try:
        path = integrations.default_model_path()
    except FileNotFoundError as e:
        pytest.skip(str(e))
    model = integrations.load_model(path)
    tokenizer = integrations.load_tokenizer(path)
    ids = integrations.tokenize_windows(integrations.load_text(split="eval"), tokenizer, seqlen=256, max_windows=1)
    online = copy.deepcopy(model)
    with torch.no_grad():
        before = model(ids).logits
        integrations.rotate_model(model)
        after = model(ids).logits
        integrations.rotate_model(online, integrations.RotationConfig(r1="online"))
        after_online = online(ids).logits
    assert model.model.layers[0].mlp.down_proj.rotation.out_features == 1536
    assert float((after - before).abs().max()) <= 1e-3
    assert float((after_online - before).abs().max()) <= 1e-3
    # the main job's "ours": smoothed on other text, then rotated online
    smoothed = integrations.load_model(path)
    calibration = integrations.tokenize_windows(integrations.load_text(split="calibration"), tokenizer, seqlen=256,
                                                max_windows=2)
    integrations.smooth_model(smoothed, calibration, progress=False)
    integrations.rotate_model(smoothed, integrations.RotationConfig(r1="online"))
    with torch.no_grad():
        assert float((smoothed(ids).logits - before).abs().max()) <= 1e-3
