"""The container files, checked without a container engine: the wheel the image installs, the
Dockerfile's steps against the tree, and compose.yaml against the settings."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from server.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PACKAGES: list[str] = PYPROJECT["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]


def setting_names() -> set[str]:
    """Every environment name Settings reads: FLOWAI_<field>, plus the aliases."""
    names = set()
    for name, field in Settings.model_fields.items():
        names.add(f"FLOWAI_{name.upper()}")
        alias = field.validation_alias
        for choice in getattr(alias, "choices", []):
            if isinstance(choice, str):
                names.add(choice)
    return names


def package_files() -> set[str]:
    files = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                files.add(path.relative_to(ROOT).as_posix())
    return files


def purelib(python: str) -> str:
    code = "import sysconfig; print(sysconfig.get_path('purelib'))"
    return subprocess.run(
        [python, "-c", code], check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    pip = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation"]
    subprocess.run([*pip, "--wheel-dir", str(out), str(ROOT)], check=True, timeout=120)
    (built,) = out.glob("flowai_backend-*.whl")
    return built


def test_the_wheel_holds_every_module_and_data_file(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        assert "flowai = server.cli:main" in zf.read(entry_points).decode()
    content = {n for n in names if ".dist-info/" not in n}
    expected = package_files()
    assert {f for f in expected if f.endswith(".sql")} >= {
        "persistence/migrations/0001_projects_documents.sql",
        "persistence/sql/ledger.sql",
    }
    assert content == expected


def test_the_installed_wheel_runs_from_a_plain_virtualenv(wheel: Path, tmp_path: Path) -> None:
    """The builder stage's result: the package installed (not editable) in its own venv; the
    dependencies are borrowed from this interpreter's environment, so nothing is downloaded."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site, deps = purelib(str(python)), purelib(sys.executable)
    # A plain path entry: the dependencies, but not the .pth files (the editable checkout).
    Path(site, "borrowed_dependencies.pth").write_text(deps + "\n")
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet"]
    subprocess.run([*pip, "--no-deps", "--no-index", str(wheel)], check=True, timeout=120)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("FLOWAI")}
    check = (
        "import persistence.db as db, persistence.ledger_pg as lg, server.settings;"
        f"assert db.__file__.startswith({site!r}), db.__file__;"
        "print(len(db.load_migrations()), lg.SQL_PATH.is_file())"
    )
    run = subprocess.run(
        [str(python), "-c", check], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    migrations = len(list((ROOT / "persistence/migrations").glob("*.sql")))
    assert run.stdout.split() == [str(migrations), "True"]
    flowai = str(venv / "bin" / "flowai")
    usage = subprocess.run(
        [flowai, "--help"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert usage.returncode == 0 and "serve" in usage.stdout and "worker" in usage.stdout


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_the_dockerfile_copies_what_exists_and_installs_it_plainly() -> None:
    steps = dockerfile_instructions()
    stages = [rest for word, rest in steps if word == "FROM"]
    assert len(stages) == 2 and stages[0].endswith("AS builder"), stages
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    copied = []
    for word, rest in steps:
        if word == "COPY" and not rest.startswith("--from="):
            *sources, _dest = rest.split()
            for source in sources:
                assert (ROOT / source).exists(), source
                assert f"!{source}" in ignore or f"!{source}/" in ignore, source
                copied.append(source)
    assert set(PACKAGES) <= set(copied) and "pyproject.toml" in copied
    runs = " ".join(rest for word, rest in steps if word == "RUN")
    assert "python -m venv /opt/venv" in runs and "/opt/venv/bin/pip install ." in runs
    assert "pip install -e" not in runs
    runtime = steps[[w for w, _ in steps].index("FROM", 1) :]
    assert ("COPY", "--from=builder /opt/venv /opt/venv") in runtime
    users = [rest for word, rest in runtime if word == "USER"]
    assert users and users[-1] not in ("root", "0")
    env = " ".join(rest for word, rest in runtime if word == "ENV")
    for name in re.findall(r"\b(FLOWAI_[A-Z0-9_]+)=", env):
        assert name in setting_names(), name
    data_dir = re.search(r"FLOWAI_DATA_DIR=(\S+)", env)
    assert data_dir is not None
    assert any(word == "VOLUME" and data_dir[1] in rest for word, rest in runtime)
    assert any(word == "HEALTHCHECK" and "/readyz" in rest for word, rest in runtime)
    assert ("ENTRYPOINT", '["flowai"]') in runtime
    assert ("CMD", '["serve", "--host", "0.0.0.0"]') in runtime


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return loaded


def test_compose_sets_only_settings_that_exist() -> None:
    known = setting_names()
    text = (ROOT / "compose.yaml").read_text()
    services = compose()["services"]
    for name in ("server", "worker"):
        environment = services[name]["environment"]
        assert isinstance(environment, dict)
        for key in environment:
            assert key in known, (name, key)
        assert "FLOWAI_DATABASE_URL" in environment and "FLOWAI_REDIS_URL" in environment
    # Interpolated from the host's environment: the same names the server reads.
    for variable in re.findall(r"\$\{(FLOWAI_[A-Z0-9_]+)", text):
        assert variable in known, variable


def test_compose_services_are_checked_and_the_worker_runs_the_servers_image() -> None:
    spec = compose()
    services = spec["services"]
    assert set(services) == {"server", "worker", "postgres", "redis"}
    for name, service in services.items():
        healthcheck = service.get("healthcheck", {})
        checked = bool(healthcheck.get("test")) and not healthcheck.get("disable")
        assert checked or service.get("depends_on"), name
        for dependency, condition in service.get("depends_on", {}).items():
            assert dependency in services
            if condition.get("condition") == "service_healthy":
                assert services[dependency]["healthcheck"].get("test"), dependency
        for volume in service.get("volumes", []):
            assert volume.split(":")[0] in spec["volumes"], (name, volume)
    server, worker = services["server"], services["worker"]
    assert server["build"] == "." and worker["image"] == server["image"]
    assert "build" not in worker
    assert worker["command"] == ["worker"]
    assert "/readyz" in " ".join(server["healthcheck"]["test"])
    assert server["command"][:1] == ["serve"] and "0.0.0.0" in server["command"]


def test_readme_deployment_sections_name_only_real_settings() -> None:
    readme = (ROOT / "README.md").read_text()
    start = readme.index("## Deploying on Supabase")
    end = readme.index("\n## ", start + 1)
    section = readme[start:end]
    names = set(re.findall(r"\b(FLOWAI_[A-Z0-9_]+)\b", section))
    assert {"FLOWAI_DATABASE_URL", "FLOWAI_JWT_SECRET", "FLOWAI_MEDIA_S3_ADDRESSING_STYLE"} <= names
    unknown = {n for n in names if n not in setting_names() and not n.endswith("_")}
    assert not unknown
