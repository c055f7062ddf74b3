"""The parity record says which checks ran, and nothing that did not run is claimed.

`convert --parity-lines 0` used to skip the token-id check and still record `"checked": true` (and the model card
claimed ids equal on 0/0 lines). With parity on it is now refused as a config error; with --no-parity the manifest,
the card and `koroberta run`'s summary name each check that did not run. A parity text that is no text at all is a
one-line error naming it.
"""

from __future__ import annotations

import numpy as np
import pytest

from koroberta.convert.config import ConvertConfig
from koroberta.convert.export import convert
from koroberta.errors import ConfigError
from koroberta.pipeline import format_summary

from cli_errors import main_error


def test_parity_lines_0_with_parity_is_refused(tiny_checkpoint, tiny_vocab, tmp_path, capsys):
    with pytest.raises(ConfigError, match="parity_lines 0 skips the token-id check"):
        ConvertConfig(parity_lines=0)
    out = tmp_path / "hf"
    main_error(capsys, ["convert", str(tiny_checkpoint), str(out), "--vocab-dir", str(tiny_vocab),
                       "--parity-lines", "0"], "--parity-lines 0", "token-id check", "--no-parity")
    yml = tmp_path / "c.yaml"
    yml.write_text("convert:\n  parity_lines: 0\n", encoding="utf-8")
    main_error(capsys, ["convert", str(tiny_checkpoint), str(out), "--vocab-dir", str(tiny_vocab), "--config",
                       str(yml)], f"error: {yml}: ", "--no-parity")
    assert not out.exists()


def test_export_with_no_check_says_so_everywhere(tiny_checkpoint, tiny_vocab, tiny_split, tmp_path):
    m = convert(ConvertConfig(parity=False, parity_lines=0), tiny_checkpoint, tiny_vocab, tmp_path / "hf",
                parity_text=tiny_split / "valid.txt")
    par = m["stats"]["parity"]
    assert (par["checked"], par["token_ids_checked"], par["logits_checked"]) == (False, False, False)
    assert "token_id_lines" not in par and par["max_abs_logit_diff"] is None
    card = (tmp_path / "hf" / "README.md").read_text(encoding="utf-8")
    assert "logits **not checked**" in card and "token ids **not checked** (parity_lines 0)" in card
    assert "ids equal" not in card
    summary = format_summary({"name": "x", "workdir": "runs/x", "stages": {"convert": m["stats"]}, "seconds": {}})
    assert "logits NOT checked (--no-parity); token ids NOT checked (parity_lines 0)" in summary


@pytest.mark.parametrize("kind", ["directory", "empty", "binary", "latin-1"])
def test_parity_text_that_is_not_text(tiny_checkpoint, tiny_vocab, tmp_path, capsys, kind):
    if kind == "directory":
        p = tmp_path / "split"
        p.mkdir()
    else:
        p = tmp_path / "valid.txt"
        # binary: a .bin of frequent (small) ids is valid UTF-8 all the same -- control characters and NULs
        small_ids = np.resize(np.array([5, 17, 2, 40, 9, 2], dtype=np.uint16), 300).tobytes()
        p.write_bytes({"empty": b"\n \n", "binary": small_ids,
                       "latin-1": "caf\u00e9 cr\u00e8me\n".encode("latin-1")}[kind])
    out = tmp_path / "hf"
    needle = {"directory": "is a directory", "empty": "no non-blank lines", "binary": "binary data, not text",
              "latin-1": "not UTF-8"}[kind]
    main_error(capsys, ["convert", str(tiny_checkpoint), str(out), "--vocab-dir", str(tiny_vocab), "--parity-text",
                       str(p)], f"error: {p}: ", needle, "valid split")
    assert not out.exists()
