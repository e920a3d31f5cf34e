"""The installable package: the wheel carries the corpus, and an installed btfspec works outside the checkout.

The wheel is built offline from a copy of the sources (nothing is written into the checkout) with this
environment's setuptools, installed with ``--no-deps`` into a fresh venv in a temporary directory whose
dependencies come from this environment through a ``.pth`` line (the ``--system-site-packages`` idea,
pointed at this venv), and run from a directory outside the checkout.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

from btfspec.locations import CONTENT_ROOT, CORPUS_DIR
from btfspec.oracle.fuzz.corpus import iter_entries

pytestmark = pytest.mark.slow
SOURCES = ["pyproject.toml", "README.md", "LICENSE", "btfspec", "spec", "btfgen", "oracle", "corpus"]
# what a checkout may hold that is not source: never copied into the build
NOT_SOURCE = shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis", "found", "real", "*.egg-info")


def _setuptools_reason() -> str | None:
    try:
        version = metadata.version("setuptools")
    except metadata.PackageNotFoundError:
        return "setuptools is not installed here (scripts/bootstrap.sh installs it with the dev extra)"
    if int(version.split(".")[0]) < 77:
        return f"setuptools {version} < 77 cannot build an SPDX license (the dev extra installs a newer one)"
    return None


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A fresh venv outside the checkout with the built wheel installed; returns its paths."""
    why = _setuptools_reason()
    if why:
        pytest.skip(why)
    if not (CONTENT_ROOT / "pyproject.toml").is_file():
        pytest.skip("not a source checkout: nothing to build")
    tmp = tmp_path_factory.mktemp("package")
    src, dist, env_dir, work = tmp / "src", tmp / "dist", tmp / "venv", tmp / "work"
    src.mkdir()
    work.mkdir()
    for name in SOURCES:
        origin = CONTENT_ROOT / name
        if origin.is_dir():
            shutil.copytree(origin, src / name, ignore=NOT_SOURCE)
        else:
            shutil.copy2(origin, src / name)
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                            "-q", "-w", str(dist), str(src)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    assert "Warning" not in build.stderr, build.stderr  # e.g. setuptools' license or package-data warnings
    (wheel,) = dist.glob("btfspec-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        packaged = {n for n in zf.namelist() if n.endswith("/__init__.py")}
    mapping = {"btfspec": "btfspec", "spec": "btfspec/spec", "btfgen": "btfspec/btfgen", "oracle": "btfspec/oracle"}
    sources = {mapping[p.relative_to(src).parts[0]] + "/" + "/".join(p.relative_to(src).parts[1:])
               for root in mapping for p in (src / root).rglob("__init__.py")}
    assert sources == packaged, sources ^ packaged  # every package of the tree is in the wheel
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    inst = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index",
                           "-q", str(wheel)], capture_output=True, text=True, timeout=300)
    assert inst.returncode == 0, inst.stderr
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    # the dependencies (not btfspec: its editable finder is a .pth this line does not run) from this venv
    (Path(site) / "btfspec-test-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return {"python": python, "btfspec": env_dir / "bin" / "btfspec", "work": work, "site": Path(site), "tmp": tmp}


def _run(installed: dict[str, Path], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["BTFSPEC_RESULTS"] = str(installed["tmp"] / "results")
    env["PATH"] = f"{installed['btfspec'].parent}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(list(args), cwd=installed["work"], env=env, capture_output=True, text=True, timeout=timeout)


def test_the_installed_package_is_the_wheel_and_carries_the_corpus(installed: dict[str, Path]) -> None:
    res = _run(installed, str(installed["python"]), "-c",
               "import btfspec, btfspec.locations as l; print(btfspec.__file__); print(l.CORPUS_DIR)")
    assert res.returncode == 0, res.stderr
    module, corpus = (Path(line) for line in res.stdout.split())
    assert module.is_relative_to(installed["site"]) and corpus == installed["site"] / "btfspec" / "corpus"
    res = _run(installed, str(installed["btfspec"]), "--version")
    assert res.returncode == 0 and metadata.version("btfspec") in res.stdout, res.stdout + res.stderr
    res = _run(installed, str(installed["btfspec"]), "corpus", "list", "--json")
    committed = [e.id for e in iter_entries(CORPUS_DIR) if not e.id.startswith("found/")]
    assert res.returncode == 0 and [r["id"] for r in json.loads(res.stdout)] == committed, res.stderr


def test_corpus_run_and_a_short_campaign_from_the_installed_package(installed: dict[str, Path]) -> None:
    res = _run(installed, str(installed["btfspec"]), "corpus", "run", "--impl", "python", "--json")
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr
    summary = json.loads(res.stdout)["summary"]
    assert summary["entries"] > 30 and summary["fail"] == 0 and summary["pass"] > 25
    # a directory of the port's own in the same format
    mine = installed["work"] / "my-corpus"
    shutil.copytree(CORPUS_DIR / "selftests" / "distilled_base", mine / "distilled_base")
    res = _run(installed, str(installed["btfspec"]), "corpus", "run", str(mine), "--impl", "python", "--json")
    assert res.returncode == 0 and json.loads(res.stdout)["summary"]["entries"] == 1, res.stderr
    report = installed["work"] / "fuzz.json"
    res = _run(installed, str(installed["btfspec"]), "fuzz", "--impl", "python", "--time", "10s", "--workers", "1",
               "--seed", "1", "--quiet", "--property", "P2,P4", "--report", str(report))
    assert res.returncode in (0, 1), res.stdout[-2000:] + res.stderr
    run = json.loads(report.read_text())
    assert sum(run["examples"].values()) > 0 and run["corpus_dir"] == str(installed["tmp"] / "results" / "found")
    assert not (installed["site"] / "btfspec" / "corpus" / "found").exists()


def test_the_installed_plugin_collects_the_installed_corpus(installed: dict[str, Path]) -> None:
    suite = installed["work"] / "port-tests"
    suite.mkdir(exist_ok=True)
    res = _run(installed, str(installed["python"]), "-m", "pytest", str(suite), "--btfspec-impl", "python",
               "--collect-only", "-q", "-p", "no:cacheprovider")
    items = [line for line in res.stdout.splitlines() if line.startswith("btfspec-corpus/")]
    steps = sum(len(e.steps) for e in iter_entries(CORPUS_DIR) if not e.id.startswith("found/"))
    assert res.returncode == 0 and len(items) == steps, res.stdout[-2000:] + res.stderr
