"""benchmarks/_vlm.py: full-depth decoders from one shared layer behave as the full model would."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import _vlm  # noqa: E402


@pytest.mark.parametrize("geometry", ["llava15", "next"])
def test_shared_layers_match_a_model_with_copied_layers(geometry: str) -> None:
    shared, image = _vlm.build(geometry, depth=3, dtype=torch.float32, tiny=True, shared=True)
    layers = shared.text_model.layers
    assert len(layers) == 3 and shared.text_model.config.num_hidden_layers == 3
    assert [layer.self_attn.layer_idx for layer in layers] == [0, 1, 2]
    assert layers[2].mlp.up_proj.weight is layers[0].mlp.up_proj.weight
    # one layer's parameters, whatever the depth
    n_params = sum(p.numel() for p in shared.model.parameters())
    plain, _ = _vlm.build(geometry, depth=3, dtype=torch.float32, tiny=True)
    layer_params = sum(p.numel() for p in layers[0].parameters())
    assert sum(p.numel() for p in plain.model.parameters()) == n_params + 2 * layer_params
    plain.model.load_state_dict(shared.model.state_dict())  # every layer now holds layer 0's weights

    for name, budget in [("none", shared.visual_tokens(image)), ("flowcut", 64), ("fastv", 64)]:
        a, b = (m.generate([image], [_vlm.QUESTION], _vlm.method(name), budget, max_new_tokens=6,
                           min_new_tokens=6)[0] for m in (shared, plain))  # fmt: skip
        assert a.text == b.text, name
        assert a.cost.kv_cache_bytes == b.cost.kv_cache_bytes > 0, name
        assert a.cost.prefill_flops == b.cost.prefill_flops, name
        assert a.cost.llm_layer_visual_tokens == b.cost.llm_layer_visual_tokens, name


def test_pick_dtype_names() -> None:
    assert _vlm.pick_dtype("float32") is torch.float32
    assert _vlm.pick_dtype("bfloat16") is torch.bfloat16
    assert _vlm.pick_dtype("auto") in (torch.float32, torch.bfloat16)


def test_speed_script_runs_full_depth_with_shared_layers() -> None:
    """The CLI path the full-depth tables used, at tiny widths: one row per configuration, the header says so."""
    import subprocess

    bench = Path(__file__).resolve().parent.parent / "benchmarks"
    out = subprocess.run(
        [
            sys.executable,
            "prefill_speedup.py",
            "--geometry",
            "llava15",
            "--tiny",
            "--depth",
            "4",
            "--shared-layers",
            "--methods",
            "flowcut",
            "--budgets",
            "64",
            "--repeats",
            "1",
            "--warmup",
            "short",
            "--device",
            "cpu",
            "--dtype",
            "float32",
        ],  # fmt: skip
        cwd=bench,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    assert "decoder 4 of 32 layers (one layer's weights shared by all), float32 on cpu" in out
    rows = {
        line.split()[0]: line.split()
        for line in out.splitlines()
        if line.split()[:1] in (["none"], ["bound"], ["flowcut"])
    }
    assert set(rows) == {"none", "bound", "flowcut"} and rows["flowcut"][1:3] == ["64", "64"]
