"""Every stage has the same entry point: ``koroberta.<stage>.stage.run(cfg, inputs, out, *, force, opts)``."""

import importlib
import inspect
import typing

import pytest

from koroberta.pipeline import STAGES, STEPS, PipelineConfig
from koroberta.stage import check_inputs


@pytest.mark.parametrize("name", STAGES)
def test_stage_module_has_the_contract_signature(name):
    mod = importlib.import_module(f"koroberta.{name}.stage")
    sig = inspect.signature(mod.run)
    assert list(sig.parameters) == ["cfg", "inputs", "out", "force", "opts"]
    assert sig.parameters["force"].kind is inspect.Parameter.KEYWORD_ONLY
    hints = typing.get_type_hints(mod.run)
    assert hints["cfg"].__name__.lower().startswith(name) and hints["return"] == dict[str, typing.Any]
    assert isinstance(mod.INPUTS, tuple) and mod.INPUTS


@pytest.mark.parametrize("hf", [None, "hf-model"])
def test_pipeline_wires_exactly_each_stages_inputs(tmp_path, hf):
    cfg = PipelineConfig(source="x.xml.bz2", nsmc_train="t.tsv", init_from_hf=hf)
    enabled = [s.stage for s in STEPS if s.enabled(cfg)]
    assert ("spm" in enabled) is (hf is None) and ("importhf" in enabled) is (hf is not None)
    for step in STEPS:
        if not step.enabled(cfg):
            continue
        mod = importlib.import_module(f"koroberta.{step.stage}.stage")
        inputs = step.inputs(cfg, tmp_path)
        check_inputs(step.stage, inputs, mod.INPUTS, getattr(mod, "OPTIONAL", ()))  # raises on a wiring mistake


def test_missing_input_is_a_programming_error():
    with pytest.raises(TypeError, match="missing \\['source'\\]"):
        check_inputs("corpus", {}, ("source",))


# -- the layout, read with `ast` (no import needed, so a broken module is reported as what it is) --------------------
import ast  # noqa: E402
from pathlib import Path  # noqa: E402

PKG = Path(__file__).resolve().parents[1] / "koroberta"
#: the library modules scanned for cross-module private imports (bench/ is ours too: it must use public names)
SCANNED = sorted([*PKG.rglob("*.py"), *(PKG.parent / "bench").rglob("*.py")])


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _is_docstring(node: ast.stmt) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)


@pytest.mark.parametrize("name", STAGES)
def test_every_stage_package_has_the_same_files(name):
    files = {p.name for p in (PKG / name).glob("*.py")}
    assert {"__init__.py", "config.py", "stage.py", "cli.py"} <= files


@pytest.mark.parametrize("name", [*STAGES, "eval"])
def test_package_init_is_only_a_docstring(name):
    """The implementation lives in modules named for what they do, never in ``__init__.py`` (an import of the
    package must not pull in torch or fairseq, and a reader finds ``build_corpus`` in ``corpus/build.py``)."""
    body = _tree(PKG / name / "__init__.py").body
    assert len(body) == 1 and _is_docstring(body[0]), f"koroberta/{name}/__init__.py holds code"


@pytest.mark.parametrize("name", STAGES)
def test_stage_module_defines_only_the_contract(name):
    """``stage.py``: imports, ``INPUTS``/``OPTIONAL`` and ``run`` -- nothing else of the implementation."""
    defined = []
    for node in _tree(PKG / name / "stage.py").body:
        if _is_docstring(node) or isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        if isinstance(node, ast.Assign):
            defined += [t.id for t in node.targets if isinstance(t, ast.Name)]
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.AnnAssign)):
            defined.append(getattr(node, "name", None) or node.target.id)
        else:
            defined.append(type(node).__name__)
    assert "run" in defined and "INPUTS" in defined
    assert set(defined) <= {"run", "INPUTS", "OPTIONAL", "PREFIXES"}, f"{name}/stage.py defines {defined}"


@pytest.mark.parametrize("name", STAGES)
def test_cli_module_is_thin(name):
    """``cli.py`` parses arguments and calls the library: no heavy import at module level (``koroberta --help``
    stays instant) and no implementation beyond small command functions."""
    tree = _tree(PKG / name / "cli.py")
    top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    mods = [a.name for n in top if isinstance(n, ast.Import) for a in n.names] + \
           [n.module or "" for n in top if isinstance(n, ast.ImportFrom)]
    heavy = [m for m in mods if m.split(".")[0] in ("torch", "fairseq", "transformers", "sentencepiece", "kss")]
    assert heavy == [], f"{name}/cli.py imports {heavy} at module level"
    assert any(isinstance(n, ast.FunctionDef) and n.name == "register" for n in tree.body)


def _module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    return ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def private_imports(paths=SCANNED) -> list[str]:
    """``from other.module import _name`` anywhere in a module (function-level imports included), and
    ``alias._name`` where ``alias`` is another koroberta module imported under that name."""
    found = []
    for path in paths:
        me = _module_name(path)
        tree = _tree(path)
        modules = {}  # local name -> koroberta module it stands for
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module != me and node.level == 0:
                found += [f"{me}: from {node.module} import {a.name}" for a in node.names if _private(a.name)]
                if node.module.startswith("koroberta"):
                    modules.update({a.asname or a.name: f"{node.module}.{a.name}" for a in node.names})
            elif isinstance(node, ast.Import):
                modules.update({a.asname: a.name for a in node.names if a.asname and a.name.startswith("koroberta")})
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules
                    and _private(node.attr) and modules[node.value.id] != me):
                found.append(f"{me}: {modules[node.value.id]}.{node.attr}")
    return sorted(set(found))


def test_no_module_imports_another_modules_private_names():
    assert private_imports() == []


def test_private_import_check_catches_one(tmp_path):
    bad = PKG / "corpus" / "_probe_for_test.py"  # a path under the package, so its module name resolves
    try:
        bad.write_text("from koroberta.corpus.steps import _pool\nfrom koroberta.corpus import steps as S\nS._pool\n")
        assert private_imports([bad]) == ["koroberta.corpus._probe_for_test: from koroberta.corpus.steps import _pool",
                                          "koroberta.corpus._probe_for_test: koroberta.corpus.steps._pool"]
    finally:
        bad.unlink()


def test_shared_contracts_live_at_the_top_level():
    """The id layout and the text reader serve every stage (spm, preprocess, train, convert; HF tokenizers next to
    spm later): they are top-level modules, not one stage's."""
    assert (PKG / "layout.py").is_file() and (PKG / "textfile.py").is_file()
    assert not (PKG / "spm" / "layout.py").exists() and not (PKG / "spm" / "text.py").exists()


def test_declared_requirements_are_checked_before_any_step():
    from koroberta.errors import DependencyError
    from koroberta.pipeline import Step, check_requirements

    check_requirements(STEPS)  # what the stages declare is installed here (make setup)
    steps = [Step("spm", "spm", lambda c, wd: {}, requires=("sentencepiece",)),
             Step("train", "checkpoints", lambda c, wd: {}, requires=("koroberta_no_such_package",))]
    with pytest.raises(DependencyError, match=r"not installed: koroberta_no_such_package \(for train\)"):
        check_requirements(steps)


def test_run_refuses_a_missing_requirement_before_the_first_stage(tmp_path, monkeypatch):
    """`koroberta run` stops at once, nothing made, when a later stage's package is missing."""
    import importlib.util

    from koroberta.errors import DependencyError
    from koroberta.pipeline import run_pipeline

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "fairseq" else real(name, *a))
    src = tmp_path / "src.txt"
    src.write_text("가나다라 마바사.\n", encoding="utf-8")
    cfg = PipelineConfig(source=str(src), workdir=str(tmp_path / "run"))
    with pytest.raises(DependencyError, match=r"fairseq \(for train, convert\)"):
        run_pipeline(cfg)
    assert not (tmp_path / "run" / "corpus").exists()
