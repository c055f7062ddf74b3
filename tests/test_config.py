"""The config system: YAML/CLI -> validated dataclasses, with errors that name the key."""

import argparse
import dataclasses
from typing import Optional

import pytest

from koroberta.config import Config, load_yaml, option
from koroberta.errors import ConfigError


@dataclasses.dataclass
class Demo(Config):
    SECTION = "demo"
    vocab_size: int = option(32000, help="pieces")
    lr: float = option(5e-4)
    model_type: str = option("unigram", choices=["unigram", "bpe"])
    shuffle: bool = option(True)
    sizes: list[int] = option(default_factory=lambda: [1, 2])
    note: Optional[str] = option(None)

    def validate(self):
        self.require(self.vocab_size > 8, "vocab_size must be > 8")


def test_from_dict_types_and_defaults():
    c = Demo.from_dict({"vocab_size": 8000, "lr": 1, "sizes": [3]})
    assert (c.vocab_size, c.lr, c.sizes, c.model_type) == (8000, 1.0, [3], "unigram")
    assert isinstance(c.lr, float)


@pytest.mark.parametrize("data,needle", [
    ({"vocab_sise": 10}, "unknown key(s) vocab_sise"),
    ({"vocab_size": "32000"}, "must be an integer"),
    ({"vocab_size": True}, "must be an integer"),
    ({"shuffle": "yes"}, "must be true or false"),
    ({"model_type": "wordpiece"}, "not one of unigram, bpe"),
    ({"vocab_size": 4}, "vocab_size must be > 8"),
    ({"sizes": 3}, "must be a list"),
])
def test_bad_values_are_config_errors(data, needle):
    with pytest.raises(ConfigError, match=None) as e:
        Demo.from_dict(data, source="x.yaml")
    assert needle in str(e.value)


def test_cli_options_override_yaml_and_bools_are_flags():
    p = argparse.ArgumentParser()
    Demo.add_arguments(p)
    args = p.parse_args(["--vocab-size", "1000", "--no-shuffle"])
    c = Demo.from_args(args, base={"lr": 0.1, "vocab_size": 50})
    assert (c.vocab_size, c.shuffle, c.lr) == (1000, False, 0.1)
    assert Demo.from_args(p.parse_args([])).shuffle is True
    with pytest.raises(SystemExit):
        p.parse_args(["--model-type", "wordpiece"])


def test_load_yaml_errors(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_yaml(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_yaml(bad)
    lst = tmp_path / "list.yaml"
    lst.write_text("- 1\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_yaml(lst)
