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


def test_pipeline_wires_exactly_each_stages_inputs(tmp_path):
    cfg = PipelineConfig(source="x.xml.bz2", nsmc_train="t.tsv")
    for step in STEPS:
        mod = importlib.import_module(f"koroberta.{step.stage}.stage")
        inputs = step.inputs(cfg, tmp_path)
        check_inputs(step.stage, inputs, mod.INPUTS, getattr(mod, "OPTIONAL", ()))  # raises on a wiring mistake


def test_missing_input_is_a_programming_error():
    with pytest.raises(TypeError, match="missing \\['source'\\]"):
        check_inputs("corpus", {}, ("source",))
