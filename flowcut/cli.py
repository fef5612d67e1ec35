"""``python -m flowcut``: ask a pruned VLM about an image, list the methods."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from .errors import FlowcutError

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)


def parse_budget(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise FlowcutError("budget", f"must be a whole number of visual tokens, got {text!r}") from None
    if value < 1:
        raise FlowcutError("budget", f"must be at least 1, got {value}")
    return value


@app.command()
def ask(
    image: Path = typer.Argument(..., help="image file"),
    question: str = typer.Argument(..., help="question about the image"),
    model: str = typer.Option(
        "tiny-llava", help="checkpoint name or folder, or tiny-llava / tiny-llava_next / tiny-qwen2_vl"
    ),
    method: str = typer.Option("flowcut", help="pruning method (see `methods`)"),
    budget: str = typer.Option("64", help="visual tokens kept per image"),
    seed: int = typer.Option(0, help="seed of the method's random choices"),
    max_new_tokens: int = typer.Option(16, help="answer length limit"),
    device: str = typer.Option("cpu", help="cpu or cuda"),
    save_png: Path | None = typer.Option(None, help="write the image with the kept patches highlighted"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """Answer QUESTION about IMAGE with a pruned model; print answer, kept tokens and timings."""
    try:
        from .images import open_image
        from .methods import make_method
        from .models import load

        n_budget = parse_budget(budget)
        pruner = make_method(method, seed=seed)
        img = open_image(image)
        adapter = load(model, device=device)
        out = adapter.generate([img], [question], pruner, n_budget, max_new_tokens=max_new_tokens)[0]
        if save_png is not None:
            from .draw import overlay

            overlay(img, out.kept[0], out.grids[0]).save(save_png)
    except FlowcutError as e:
        typer.echo(f"error: {e}", err=True)  # one line, never wrapped
        raise typer.Exit(2) from None
    c = out.cost
    record = {
        "answer": out.text,
        "method": method,
        "budget": n_budget,
        "kept_per_crop": [len(k) for k in out.kept],
        "visual_tokens_llm_input": c.visual_tokens_llm_input,
        "visual_tokens_layer_avg": round(c.visual_tokens_layer_avg, 2),
        "vision_ms": round(c.vision_ms, 2),
        "prefill_ms": round(c.prefill_ms, 2),
        "decode_ms": round(c.decode_ms, 2),
        "total_ms": round(c.total_ms, 2),
        "tflops": round(c.flops / 1e12, 6),
        "kv_cache_bytes": c.kv_cache_bytes,
        "peak_memory_bytes": c.peak_memory_bytes,
        "kept": out.kept,
    }
    if as_json:
        typer.echo(json.dumps(record))
        return
    table = Table(show_header=False)
    for key, value in record.items():
        if key != "kept":
            table.add_row(key, str(value))
    Console().print(table)


@app.command()
def methods() -> None:
    """List the registered pruning methods and where each prunes."""
    from .methods import METHODS

    for name, cls in METHODS.items():
        doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
        typer.echo(f"{name:10s} {cls.kind:8s} {doc}")


@app.command()
def demo(
    model: str = typer.Option("tiny-llava", help="checkpoint name or folder, or a tiny-<type> random model"),
    budgets: str = typer.Option("64,128,192", help="comma-separated budgets"),
    images: int = typer.Option(4, help="generated scenes to ask about (one batch)"),
    max_new_tokens: int = typer.Option(8, help="answer length"),
) -> None:
    """Every method at every budget on a batch of generated scenes: kept tokens, time, FLOPs, KV."""
    try:
        from .methods import METHODS, make_method
        from .models import load
        from .tasks.suite.scene import render

        adapter = load(model)
        imgs = [render(10_000_000 + i)[0] for i in range(images)]
        questions = ["What is in the image?"] * images
        full = adapter.visual_tokens(imgs[0])
        table = Table(title=f"{model}: {images} scenes, {max_new_tokens} new tokens (ratios vs none)")
        for col in (
            "method",
            "budget",
            "llm input",
            "layer avg",
            "prefill ms",
            "total ms",
            "prefill x",
            "total x",
            "TFLOPs",
            "FLOPs x",
            "KV MB",
        ):
            table.add_column(col, justify="right")
        base = adapter.generate(imgs, questions, make_method("none"), full, max_new_tokens=max_new_tokens)
        b0 = base[0].cost
        runs = [("none", full)] + [(m, int(b)) for b in budgets.split(",") for m in METHODS if m != "none"]
        for name, budget in runs:
            outs = (
                base
                if name == "none"
                else adapter.generate(imgs, questions, make_method(name), budget, max_new_tokens=max_new_tokens)
            )
            c = outs[0].cost
            table.add_row(
                name,
                str(budget),
                str(c.visual_tokens_llm_input),
                f"{c.visual_tokens_layer_avg:.1f}",
                f"{c.prefill_ms:.1f}",
                f"{c.total_ms:.1f}",
                f"{b0.prefill_ms / c.prefill_ms:.2f}",
                f"{b0.total_ms / c.total_ms:.2f}",
                f"{c.flops / 1e12:.4f}",
                f"{b0.flops / c.flops:.2f}",
                f"{c.kv_cache_bytes / 2**20:.2f}",
            )
    except FlowcutError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    Console().print(table)
