"""The pytest plugin (``pytest11`` entry point): corpus items per entry x step x implementation, fixtures,
and ``btfspec.testing`` for ``@given`` tests -- run in a separate pytest process as a port's suite would."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from btfspec.locations import CONTENT_ROOT, CORPUS_DIR
from tests.helpers import WRONG_DISTILL_CMD, reference_server

pytest_plugins = ["pytester"]

ENTRY = CORPUS_DIR / "selftests" / "distilled_base"
STEPS = ["distill", "accept-distill", "relocate", "accept-relocate"]
README = CONTENT_ROOT / "README.md"


def readme_example() -> str:
    """The README's copy-paste example of ``@given`` tests (the Python block after "Copy into")."""
    if not README.is_file():
        pytest.skip("no README.md here (an installed copy)")
    text = README.read_text()
    return text[text.index("```python", text.index("Copy into the port's")) + 9:].split("```", 1)[0]


@pytest.fixture()
def corpus(tmp_path: Path) -> Path:
    """A one-entry corpus directory (a port's own directory in the corpus format)."""
    root = tmp_path / "my-corpus"
    shutil.copytree(ENTRY, root / ENTRY.name)
    return root


def test_one_item_per_entry_step_and_implementation(pytester: pytest.Pytester, corpus: Path) -> None:
    res = pytester.runpytest_subprocess("--btfspec-impl", "python,python-strict", "--btfspec-corpus", str(corpus),
                                        "--collect-only", "-q", "-p", "no:cacheprovider")
    want = [f"btfspec-corpus/{ENTRY.name}::{s}[{i}]" for s in STEPS for i in ("python", "python-strict")]
    assert [line for line in res.outlines if line.startswith("btfspec-corpus/")] == want
    res = pytester.runpytest_subprocess("--btfspec-impl", "python", "--btfspec-corpus", str(corpus),
                                        "-p", "no:cacheprovider")
    res.assert_outcomes(passed=len(STEPS))


def test_a_wrong_implementation_fails_with_the_first_difference(pytester: pytest.Pytester, corpus: Path) -> None:
    res = pytester.runpytest_subprocess("--btfspec-impl", "cmd", "--btfspec-distill-cmd", WRONG_DISTILL_CMD,
                                        "--btfspec-corpus", str(corpus), "-p", "no:cacheprovider")
    res.assert_outcomes(failed=1, skipped=3)  # accept and relocate: cmd was given no command for them
    text = res.stdout.str()
    assert f"btfspec-corpus/{ENTRY.name}::distill[cmd]" in text
    assert "first difference: output base: " in text and "replay: btfspec corpus run " in text


def test_the_installed_corpus_is_the_default(pytester: pytest.Pytester) -> None:
    from btfspec.oracle.fuzz.corpus import iter_entries

    steps = sum(len(e.steps) for e in iter_entries(CORPUS_DIR))
    res = pytester.runpytest_subprocess("--btfspec-impl", "python", "--collect-only", "-q", "-p", "no:cacheprovider")
    assert len([line for line in res.outlines if line.startswith("btfspec-corpus/")]) == steps


def test_the_readme_example_with_the_public_api(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_port=readme_example())
    res = pytester.runpytest_subprocess("--btfspec-impl", "python", "--btfspec-corpus", str(pytester.path),
                                        "-p", "no:cacheprovider")
    res.assert_outcomes(passed=2)
    # without --btfspec-impl the plugin adds nothing and its fixtures skip, saying why
    res = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rs")
    res.assert_outcomes(skipped=2)
    assert "no --btfspec-impl given" in res.stdout.str()


def test_usage_errors(pytester: pytest.Pytester, tmp_path: Path) -> None:
    res = pytester.runpytest_subprocess("--btfspec-impl", "pyton", "-p", "no:cacheprovider")
    assert res.ret == pytest.ExitCode.USAGE_ERROR and "unknown implementation 'pyton'" in res.stderr.str()
    res = pytester.runpytest_subprocess("--btfspec-impl", "python", "--btfspec-corpus", str(tmp_path / "nowhere"),
                                        "-p", "no:cacheprovider")
    assert res.ret == pytest.ExitCode.USAGE_ERROR and "not a directory" in res.stderr.str()


def test_the_corpus_against_the_serve_reference_server(pytester: pytest.Pytester, corpus: Path) -> None:
    server = reference_server()
    res = pytester.runpytest_subprocess("--btfspec-impl", "serve", "--btfspec-serve-cmd", server,
                                        "--btfspec-corpus", str(corpus), "-p", "no:cacheprovider", "-rs")
    res.assert_outcomes(passed=2, skipped=2)  # distill, relocate; the reference server does not accept
    assert "serve does not accept" in res.stdout.str()
