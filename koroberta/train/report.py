"""``koroberta train report SAVE_DIR``: PNG curves + throughput and MFU from the run's log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from koroberta.artifacts import check_output_location, read_json
from koroberta.errors import InputError
from koroberta.train.flops import ModelShape, flops_per_token, gpu_peak_flops, mfu
from koroberta.train.logs import draw_report, parse_log
from koroberta.train.preflight import TRAIN_STATE


def report(save_dir: str | Path, out_dir: str | Path | None = None, *, gpu: str | None = None,
           peak_tflops: float | None = None) -> dict[str, Any]:
    """Draw ``loss/ppl/lr/wps/gnorm.png`` into ``out_dir`` (default ``SAVE_DIR/report``) and compute MFU.

    wps in fairseq's log is the global rate (token counts are all-reduced across workers), so
    MFU = wps x FLOPs/token / (peak x world size). The peak comes from ``peak_tflops``, else from the GPU name
    (``gpu`` or the device recorded at launch) in :data:`~koroberta.train.flops.GPU_PEAK_FLOPS`; on CPU it is n/a.
    A run validated on per-source subsets (a multi-source corpus) gets a curve per subset in ``loss.png`` and
    ``ppl.png``, and ``valid_subsets`` in the result: each subset's final and best loss.
    """
    save_dir = Path(save_dir)
    tlog = parse_log(save_dir)
    if not tlog.inner and not tlog.valid:
        raise InputError("train.log holds no fairseq json log lines yet", path=save_dir / "train.log",
                         fix="wait for the first log_interval, or check the run started")
    state_path = save_dir / TRAIN_STATE
    if not state_path.is_file():
        raise InputError(f"{TRAIN_STATE} missing", path=save_dir, fix="pass the --save-dir of a `koroberta train` run")
    state = read_json(state_path)
    c = state["config"]
    shape = ModelShape(layers=state["layers"], dim=state["dim"], ffn=state["ffn"], heads=state["heads"],
                       vocab=state["vocab_size"], max_positions=c["max_positions"])
    f_tok = flops_per_token(shape, c["tokens_per_sample"], c["mask_prob"])
    out = Path(out_dir) if out_dir else save_dir / "report"
    if not out.resolve().is_relative_to(save_dir.resolve()):
        # PNGs go next to whatever is in --out (nothing is deleted), but never into another stage's output
        check_output_location(out, "train report", {}, overwrite=True)
    pngs = draw_report(tlog, out)
    _, wps = tlog.series("inner", "wps")
    steady = wps[1:] if len(wps) > 2 else wps  # the first interval includes warm-up (allocator, data loader)
    mean_wps = sum(steady) / len(steady) if steady else None
    name = gpu or state.get("device_name", "cpu")
    peak = peak_tflops * 1e12 if peak_tflops else gpu_peak_flops(name)
    out: dict[str, Any] = {**tlog.stats(), "flops_per_token": f_tok,
                           "mean_wps": mean_wps, "device": name, "world_size": state["world_size"],
                           "peak_flops_per_device": peak, "plots": [str(p) for p in pngs]}
    out["mfu"] = mfu(mean_wps, f_tok, peak, state["world_size"]) if (peak and mean_wps) else None
    return out
