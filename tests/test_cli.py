"""The CLI answers, draws, and turns every bad input into one line on stderr (exit 2)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from flowcut.cli import app

from .conftest import make_image

runner = CliRunner()


@pytest.fixture(scope="module")
def image_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("img") / "scene.png"
    make_image(3).save(path)
    return path


def test_ask_prints_answer_kept_tokens_and_timings(image_file: Path, tmp_path: Path) -> None:
    png = tmp_path / "kept.png"
    res = runner.invoke(
        app,
        [
            "ask",
            str(image_file),
            "what is this",
            "--budget",
            "64",
            "--json",
            "--max-new-tokens",
            "3",
            "--save-png",
            str(png),
        ],
    )
    assert res.exit_code == 0, res.output
    rec = json.loads(res.output.strip().splitlines()[-1])
    assert rec["kept_per_crop"] == [64] and rec["visual_tokens_llm_input"] == 64
    assert rec["prefill_ms"] > 0 and rec["total_ms"] >= rec["prefill_ms"] and rec["tflops"] > 0
    drawn = Image.open(png)
    assert drawn.size == (336, 336)
    # a pruned patch is darkened, a kept one is not
    kept = rec["kept"][0]
    pruned = next(i for i in range(576) if i not in kept)
    r, c = divmod(pruned, 24)
    orig = Image.open(image_file).convert("RGB").resize((336, 336))
    centre = (c * 14 + 7, r * 14 + 7)
    assert sum(drawn.getpixel(centre)) < sum(orig.getpixel(centre)) or sum(orig.getpixel(centre)) == 0


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--budget", "0"], "budget"),
        (["--budget", "-5"], "budget"),
        (["--budget", "6.5"], "budget"),
        (["--budget", "999"], "budget"),
        (["--method", "zip"], "method"),
        (["--model", "tiny-blip"], "model_type"),
    ],
)
def test_bad_input_is_one_line_naming_the_field(image_file: Path, args: list[str], field: str) -> None:
    res = runner.invoke(app, ["ask", str(image_file), "what", *args])
    assert res.exit_code == 2
    lines = [x for x in res.output.strip().splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"error: {field}: "), res.output
    assert "Traceback" not in res.output


def test_undecodable_image(tmp_path: Path) -> None:
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    res = runner.invoke(app, ["ask", str(bad), "what"])
    assert res.exit_code == 2 and res.output.strip().startswith("error: image: cannot decode")


def test_allowed_values_are_listed(image_file: Path) -> None:
    res = runner.invoke(app, ["ask", str(image_file), "what", "--budget", "999"])
    assert "allowed: 1..576" in res.output
    res = runner.invoke(app, ["ask", str(image_file), "what", "--method", "zip"])
    assert "flowcut" in res.output and "visionzip" in res.output


def test_module_entry_point_has_no_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "x.jpg"
    bad.write_text("nope")
    proc = subprocess.run([sys.executable, "-m", "flowcut", "ask", str(bad), "q"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and proc.stderr.strip().startswith("error: image:")


def test_methods_lists_every_method() -> None:
    res = runner.invoke(app, ["methods"])
    assert res.exit_code == 0
    assert {line.split()[0] for line in res.output.strip().splitlines()} >= {"flowcut", "fastv", "vflowopt"}
