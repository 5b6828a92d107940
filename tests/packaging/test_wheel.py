"""The built wheel works outside the checkout: installed into a fresh virtual environment, run
from a directory with no source in it, it generates a shop, runs the whole pipeline and answers
`recpipe recs`; the only top-level import package it brings is `recpipe`, and the deployment
entrypoints of infra/prefect.yaml load from the installed package."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def run(cmd: list[str], cwd: Path, env: dict, timeout: int = 600) -> subprocess.CompletedProcess:
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"{cmd} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(wheel path, fresh venv, clean environment, source-free working directory)."""
    root = tmp_path_factory.mktemp("wheel")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("RECPIPE_", "PYTHON", "VIRTUAL_ENV", "PREFECT_API", "MLFLOW_TRACKING"))
    }
    env["PREFECT_HOME"] = str(root / "prefect_home")
    run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(root / "dist"), "."],
        cwd=ROOT,
        env=env,
    )
    (wheel,) = (root / "dist").glob("recpipe-*.whl")
    venv = root / "venv"
    run([sys.executable, "-m", "venv", str(venv)], cwd=root, env=env)
    py = venv / "bin" / "python"
    # Only the wheel is installed here; its dependencies come from the project's environment
    # through a path file (no index needed; the project's own editable recpipe is not seen,
    # because path files inside an added directory are not processed).
    run([str(py), "-m", "pip", "install", "-q", "--no-deps", str(wheel)], cwd=root, env=env)
    site = Path(
        run(
            [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            cwd=root,
            env=env,
        ).stdout.strip()
    )
    (site / "project_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    work = root / "work"
    work.mkdir()
    return wheel, venv, env, work


def test_the_wheel_holds_one_package_with_its_sql_and_suites(installed):
    wheel = installed[0]
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith((".dist-info", ".data"))}
    assert top == {"recpipe"}
    sql = {n.removeprefix("recpipe/sql/") for n in names if n.endswith(".sql")}
    assert sql == {str(p.relative_to(ROOT / "sql")) for p in (ROOT / "sql").rglob("*.sql")}
    suites = {Path(n).name for n in names if n.startswith("recpipe/expectations/")}
    assert {p.name for p in (ROOT / "expectations").glob("*.json")} <= suites
    assert "recpipe/py.typed" in names


def test_the_installed_package_runs_the_pipeline_from_outside_the_checkout(installed):
    _, venv, env, work = installed
    recpipe = str(venv / "bin" / "recpipe")
    where = run(
        [str(venv / "bin" / "python"), "-c", "import recpipe; print(recpipe.__file__)"],
        cwd=work,
        env=env,
    )
    assert str(venv) in where.stdout and str(ROOT) not in where.stdout

    run([recpipe, "generate", "--preset", "tiny", "--out", "shop"], cwd=work, env=env)
    out = run(
        [
            recpipe,
            "run",
            "--events",
            "shop/events",
            "--items",
            "shop/items.parquet",
            "--users",
            "shop/users.parquet",
            "--data-dir",
            "data",
        ],
        cwd=work,
        env=env,
        timeout=900,
    )
    assert "published" in out.stdout + out.stderr
    assert (work / "data" / "recommendations" / "CURRENT").exists()
    user = __import__("pandas").read_parquet(work / "shop" / "users.parquet")["user_id"].iloc[0]
    recs = run([recpipe, "recs", str(user), "--data-dir", "data"], cwd=work, env=env)
    assert len([line for line in recs.stdout.splitlines() if line.strip()]) >= 10


@pytest.mark.parametrize("name", ["tasks", "flows", "sql", "expectations"])
def test_no_generic_top_level_package_is_installed(installed, name):
    _, venv, env, work = installed
    out = subprocess.run(
        [str(venv / "bin" / "python"), "-c", f"import {name}"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
    )
    assert out.returncode != 0 and "ModuleNotFoundError" in out.stderr


def test_deployment_entrypoints_load_from_the_installed_package(installed):
    _, venv, env, work = installed
    spec = yaml.safe_load((ROOT / "infra" / "prefect.yaml").read_text())
    entrypoints = [d["entrypoint"] for d in spec["deployments"]]
    assert entrypoints and all(e.startswith("recpipe.flows.") for e in entrypoints)
    code = (
        "import sys\nfrom prefect.flows import load_flow_from_entrypoint\n"
        "for e in sys.argv[1:]:\n"
        "    f = load_flow_from_entrypoint(e, use_placeholder_flow=False)\n"
        "    print(e, f.name, f.fn.__module__)\n"
    )
    out = run([str(venv / "bin" / "python"), "-c", code, *entrypoints], cwd=work, env=env)
    assert len(out.stdout.splitlines()) == len(entrypoints)
    assert "| default" not in (ROOT / "infra" / "prefect.yaml").read_text()  # never rendered
