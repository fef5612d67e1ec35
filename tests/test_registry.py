"""Every method file is registered, every registered method is documented and instantiable."""

from __future__ import annotations

from pathlib import Path

import flowcut.methods as methods_pkg
from flowcut.methods import METHODS, make_method

HELPERS = {"__init__", "base", "schedule"}


def test_every_method_file_is_registered() -> None:
    folder = Path(methods_pkg.__file__).parent
    files = {p.stem for p in folder.glob("*.py") if p.stem not in HELPERS and not p.stem.startswith("_")}
    registered = {cls.__module__.rsplit(".", 1)[1] for cls in METHODS.values()}
    assert files == registered


def test_the_issue_s_methods_are_all_there() -> None:
    wanted = {"none", "random", "fastv", "visionzip", "vispruner", "sparsevlm", "pdrop", "vflowopt", "flowcut"}
    assert set(METHODS) == wanted


def test_methods_cite_their_paper_and_build() -> None:
    for name, cls in METHODS.items():
        module_doc = __import__(cls.__module__, fromlist=["x"]).__doc__ or ""
        assert module_doc.strip(), name
        assert make_method(name, seed=3).seed == 3
