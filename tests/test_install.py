"""dlc as CI users get it: a non-editable install into a fresh virtual environment with no
torch, then `dlc check` from a folder that is not the checkout.  This is exactly what the
README's CI job (`pip install "dlc @ git+..."`) and pre-commit hook (`pip install .` of the
repository at a revision) do."""
from __future__ import annotations

import fnmatch
import shutil
import subprocess
import sys
import tomllib
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SKIP = shutil.ignore_patterns(".venv", ".git", "build", "*.egg-info", "__pycache__", ".pytest_cache", ".ruff_cache",
                              ".hypothesis", "generated", "tests", "benchmarks")


def run(args: list[str | Path], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A venv holding a non-editable install of a copy of this checkout; returns its bin folder."""
    base = tmp_path_factory.mktemp("install")
    source = base / "source"
    shutil.copytree(ROOT, source, ignore=SKIP)
    venv.create(base / "env", with_pip=True)
    bin_dir = base / "env" / ("Scripts" if sys.platform == "win32" else "bin")
    done = run([bin_dir / "python", "-m", "pip", "install", "--quiet", "--disable-pip-version-check", source], base)
    assert done.returncode == 0, done.stderr
    shutil.rmtree(source)           # the install must not need the source tree any more
    return bin_dir


@pytest.mark.slow
def test_the_installed_package_has_no_torch_and_runs_as_a_module(installed: Path, tmp_path: Path):
    assert run([installed / "python", "-c", "import torch"], tmp_path).returncode != 0, "torch leaked into the venv"
    version = run([installed / "python", "-m", "dlc", "--version"], tmp_path)
    assert version.returncode == 0 and version.stdout.startswith("dlc "), version.stderr


@pytest.mark.slow
def test_the_installed_dlc_checks_every_spec_from_another_folder(installed: Path, tmp_path: Path):
    done = run([installed / "dlc", "check", ROOT / "specs"], tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ok" in done.stdout


@pytest.mark.slow
def test_the_installed_dlc_finds_the_bundled_stdlib_for_a_users_spec(installed: Path, tmp_path: Path):
    spec = tmp_path / "mine.dl"
    spec.write_text("import layers\n\nmodel Mine(d: int = 16) {\n    in x: [B, S, d]\n"
                    "    out y = FeedForward(d, 4 * d)(x)\n}\n")
    done = run([installed / "dlc", "check", spec.name], tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    compiled = run([installed / "dlc", "compile", spec.name, "-o", "out"], tmp_path)
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr
    assert "class Mine(WeightInitMixin, nn.Module)" in (tmp_path / "out" / "mine.py").read_text()
    # the runtime it imports is written beside it: the module loads from the package and from the
    # folder on sys.path (with this interpreter, which has torch), and standalone from a lone copy
    assert "class WeightInitMixin" in (tmp_path / "out" / "dlc_runtime.py").read_text()
    alone = run([installed / "dlc", "compile", "--standalone", spec.name, "-o", "alone"], tmp_path)
    assert alone.returncode == 0, alone.stdout + alone.stderr
    (tmp_path / "copied.py").write_text((tmp_path / "alone" / "mine.py").read_text())
    for code in ("import out.mine as m", "import sys; sys.path.insert(0, 'out'); import mine as m", "import copied as m"):
        built = run([sys.executable, "-c", f"{code}; m.Mine(d=8)"], tmp_path)
        assert built.returncode == 0, code + "\n" + built.stderr


@pytest.mark.slow
def test_an_error_in_a_spec_fails_the_installed_check(installed: Path, tmp_path: Path):
    spec = tmp_path / "broken.dl"
    spec.write_text("import layers\n\nmodel Broken() {\n    in x: [B, S, 32]\n    out y = FeedForwad(32, 64)(x)\n}\n")
    done = run([installed / "dlc", "check", spec.name], tmp_path)
    assert done.returncode == 1
    assert "broken.dl:5" in done.stdout + done.stderr


def test_the_wheel_declares_every_package_and_data_file_the_install_needs():
    """The fast lane's share of this file (the install itself is slow): a package folder left out
    of pyproject.toml's explicit list, or a data file (a stdlib module, a template, the grammar)
    that no package-data glob matches, is missing from the wheel, and the installed dlc breaks."""
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = {name: ROOT / tool.get("package-dir", {}).get(name, name.replace(".", "/")) for name in tool["packages"]}
    found = {".".join(p.parent.relative_to(ROOT).parts) for top in ("compiler", "dlc")
             for p in (ROOT / top).rglob("__init__.py")}
    assert found <= set(folders), sorted(found - set(folders))
    assert all(folder.is_dir() for folder in folders.values()), folders
    data = tool["package-data"]
    for name, folder in folders.items():
        for path in folder.rglob("*"):
            if path.is_file() and path.suffix not in (".py", ".pyc") and "__pycache__" not in path.parts:
                relative = path.relative_to(folder).as_posix()
                owner = next((n for n in sorted(folders, key=len, reverse=True)
                              if path.is_relative_to(folders[n])), name)
                if owner == name:
                    assert any(fnmatch.fnmatch(relative, glob) for glob in data.get(name, [])), \
                        f"{path.relative_to(ROOT)} is in no package-data glob of {name}"
