"""tests/conftest.py: a test that skips because a dependency is missing is a skip on a developer machine and a
FAILURE when CI=true (so a CI image without fairseq cannot go green by skipping). Checked by running pytest, with the
real hooks from tests/conftest.py, on a throw-away test directory, once with CI=true and once without."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

CONFTEST = f'''
import importlib.util

_spec = importlib.util.spec_from_file_location("koroberta_tests_conftest", {str(REPO / "tests" / "conftest.py")!r})
_m = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_m)
pytest_runtest_makereport = _m.pytest_runtest_makereport
pytest_make_collect_report = _m.pytest_make_collect_report
fairseq_bin = _m.fairseq_bin
'''

TESTS = '''
import pytest
from conftest import fairseq_bin


def test_importorskip():
    pytest.importorskip("koroberta_no_such_module_xyz")


def test_fairseq_bin_missing():
    fairseq_bin("fairseq-no-such-tool")


@pytest.fixture()
def needs_tool():
    return fairseq_bin("fairseq-no-such-tool")


def test_fixture_skips(needs_tool):
    pass


@pytest.mark.skipif(True, reason="could not import 'apex': No module named 'apex'")
def test_skipif_marker():
    pass


def test_other_skip():
    pytest.skip("cannot make a read-only bind mount here")


@pytest.mark.xfail(reason="tool not installed", run=True)
def test_xfail_stays_xfail():
    raise RuntimeError("expected")


def test_passes():
    pass
'''

MODULE_SKIP = '''
import pytest
pytest.importorskip("koroberta_no_such_module_xyz")


def test_never_collected():
    pass
'''


def _outcomes(tmp_path: Path, ci: str | None, tests: str = TESTS) -> dict[str, str]:
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_it.py").write_text(tests)
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_ADDOPTS")}
    if ci is not None:
        env["CI"] = ci
    r = subprocess.run([sys.executable, "-m", "pytest", "-rA", "-p", "no:cacheprovider", "-p", "no:randomly",
                        str(tmp_path)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    out: dict[str, str] = {}
    for line in r.stdout.splitlines():
        m = re.match(r"^(PASSED|FAILED|ERROR|SKIPPED|XFAIL) (?:\[\d+\] )?(\S+?)(?::\d+)?(?: - .*|: .*)?$", line)
        if m:
            name = m.group(2).split("::")[-1]
            out[name] = m.group(1)
    out["_rc"] = str(r.returncode)
    out["_stdout"] = r.stdout
    return out


def test_missing_dependency_skips_without_ci(tmp_path):
    o = _outcomes(tmp_path, ci=None)
    assert o["_rc"] == "0", o["_stdout"]
    assert o["test_passes"] == "PASSED" and o["test_xfail_stays_xfail"] == "XFAIL", o["_stdout"]
    assert len(re.findall(r"^SKIPPED", o["_stdout"], flags=re.M)) == 5, o["_stdout"]  # 4 dependencies + bind mount
    o = _outcomes(tmp_path, ci=None, tests=MODULE_SKIP)
    assert o["_rc"] == "5" and o["test_it.py"] == "SKIPPED", o["_stdout"]  # 5: no tests collected


def test_missing_dependency_fails_with_ci_true(tmp_path):
    o = _outcomes(tmp_path, ci="true")
    out = o["_stdout"]
    assert o["_rc"] == "1", out
    assert o["test_importorskip"] == "FAILED" and o["test_fairseq_bin_missing"] == "FAILED", out
    assert o["test_fixture_skips"] == "ERROR" and o["test_skipif_marker"] == "ERROR", out  # skipped in setup
    assert "CI=true: a missing dependency fails instead of skipping" in out
    assert "fairseq-no-such-tool not installed" in out and "koroberta_no_such_module_xyz" in out
    # not about a dependency: still a skip; xfail and passes untouched
    assert re.search(r"^SKIPPED \[1\] \S+: cannot make a read-only bind mount here$", out, flags=re.M), out
    assert o["test_xfail_stays_xfail"] == "XFAIL" and o["test_passes"] == "PASSED", out
    assert len(re.findall(r"^SKIPPED", out, flags=re.M)) == 1, out
    # a module-level importorskip skips at collection: with CI=true a collection error (pytest stops, exit 2)
    o = _outcomes(tmp_path, ci="true", tests=MODULE_SKIP)
    assert o["_rc"] == "2" and o["test_it.py"] == "ERROR", o["_stdout"]
    assert "CI=true: a missing dependency fails instead of skipping" in o["_stdout"]


@pytest.mark.parametrize("reason,missing", [
    ("could not import 'fairseq': No module named 'fairseq'", True),
    ("fairseq-train not installed (run scripts/setup_env.sh)", True),
    ("No module named 'indexed_bzip2'", True),
    ("cannot make a read-only bind mount here", False),
    ("running as root: chmod does not stop root", False),
])
def test_reason_classification(reason, missing):
    # load tests/conftest.py by path: `import conftest` resolves to whichever conftest pytest imported first
    # (tests/train/conftest.py in a full run)
    spec = importlib.util.spec_from_file_location("koroberta_tests_conftest_direct", REPO / "tests" / "conftest.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.is_missing_dependency(reason) is missing
