"""environment.yml and pyproject.toml name the same packages; the repository layout."""
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _name(req):
    return re.split(r"[<>=!~\[; ]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_matches_pyproject():
    py = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_name(r) for r in py["dependencies"]}
    for extra in ("book", "test", "teach"):
        wanted |= {_name(r) for r in py["optional-dependencies"][extra]}
    env = set()
    text = (ROOT / "environment.yml").read_text()
    for line in text.split("dependencies:", 1)[1].splitlines():
        m = re.match(r"\s*-\s+([A-Za-z0-9_.-]+)", line)
        if m and m.group(1) not in ("pip", "python", "-e"):
            env.add(_name(m.group(1)))
    assert env == wanted, f"only in environment.yml: {env - wanted}; only in pyproject: {wanted - env}"


def test_no_old_numpy_pin_and_torch_is_not_a_dependency():
    py = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = py["dependencies"] + [r for v in py["optional-dependencies"].values() for r in v]
    assert not any(_name(r) == "torch" for r in reqs)
    numpy = [r for r in py["dependencies"] if _name(r) == "numpy"][0]
    assert "<" not in numpy and "==" not in numpy


def test_layout():
    for p in ("book", "nnbook", "_config.yml", "_toc.yml", "tests", "environment.yml", "README.md",
              "pyproject.toml", ".ci/run", "LICENSE", "LICENSE-TEXT"):
        assert (ROOT / p).exists(), p


def test_toc_files_exist():
    toc = (ROOT / "_toc.yml").read_text()
    for f in re.findall(r"(?:file|root):\s*(\S+)", toc):
        assert any((ROOT / f"{f}{ext}").exists() for ext in (".md", ".ipynb")), f


def test_gpu_session_script_is_valid_and_names_existing_tests():
    """benchmarks/gpu_session.sh runs only on a GPU machine: here, check that it parses
    and that every test file and bench suite it names exists."""
    import re
    import shutil
    import subprocess
    script = ROOT / "benchmarks" / "gpu_session.sh"
    text = script.read_text()
    if shutil.which("bash"):
        subprocess.run(["bash", "-n", str(script)], check=True)
    tests = re.findall(r"tests/\w+\.py", text)
    assert len(tests) >= 4 and all((ROOT / t).is_file() for t in tests), tests
    from nnbook.bench import suites
    named = re.findall(r"bench (\w+) --out", text)
    assert named == ["gpu", "cudnn"] and set(named) <= set(suites())
