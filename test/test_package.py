"""The ament_python package builds with colcon and installs where ROS 2 tools look for it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from zipfile import ZipFile

import pytest

REPO = Path(__file__).resolve().parent.parent
COLCON = Path(sys.executable).parent / "colcon"


@pytest.fixture(scope="module")
def install(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not COLCON.exists():
        pytest.fail(f"colcon is not installed next to {sys.executable}; run ./run.sh setup")
    workspace = tmp_path_factory.mktemp("ws")
    (workspace / "src").mkdir()
    (workspace / "src" / "bresa_control").symlink_to(REPO)
    result = subprocess.run(
        [str(COLCON), "build", "--packages-select", "bresa_control"],
        cwd=workspace, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return workspace / "install" / "bresa_control"


def test_data_folders_and_package_xml_install_into_share(install: Path) -> None:
    share = install / "share" / "bresa_control"
    assert (share / "package.xml").is_file()
    assert (install / "share" / "ament_index" / "resource_index" / "packages" / "bresa_control").is_file()
    # Every shipped models folder (each method's, each task's: models/maze/ and its own) is installed;
    # the training seeds (any seeds/) are not: they are for the comparison, run from the source tree.
    model_folders = sorted(str(d.relative_to(REPO)) for d in (REPO / "models").rglob("*")
                           if d.is_dir() and "seeds" not in d.relative_to(REPO).parts and any(d.glob("*.*")))
    assert {"models/recovery_rl", "models/sac_lagrangian", "models/fisor", "models/bresa_feasibility",
            "models/maze", "models/maze/sac_lagrangian"} <= set(model_folders)
    for folder in ("launch", "config", "models", "sim", *model_folders):
        shipped = sorted(p.name for p in (REPO / folder).glob("*.*"))
        assert shipped, f"{folder}/ ships no files"
        installed = sorted(p.name for p in (share / folder).iterdir() if p.is_file())
        assert installed == shipped, folder
    assert not list((share / "models").rglob("seeds")) and not (share / "models" / "candidates").exists()


def test_console_scripts_install_into_lib_package(install: Path) -> None:
    for name in ("bresa", "mujoco_sim", "safety_critic", "task_policy"):  # what ros2 run / launch start
        script = install / "lib" / "bresa_control" / name
        assert script.is_file() and os.access(script, os.X_OK), name


def test_installed_package_finds_its_data_without_the_source_tree(install: Path, tmp_path: Path) -> None:
    site = next(install.glob("lib/python3*/site-packages"))
    env = {**os.environ, "PYTHONPATH": str(site), "AMENT_PREFIX_PATH": str(install)}
    code = ("import bresa_control, bresa_control.common.paths as p; "
            "print(bresa_control.__file__); print(p.find_data('config/peg_insertion.yaml')); "
            "print(p.find_data('sim/peg_insertion.xml'))")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    module, config, scene = result.stdout.split()
    for path in (module, config, scene):
        assert Path(path).resolve().is_relative_to(install.resolve()), path
    help_text = subprocess.run([str(install / "lib" / "bresa_control" / "bresa"), "--help"], env=env,
                               capture_output=True, text=True, timeout=120)
    assert help_text.returncode == 0 and "evaluate" in help_text.stdout


def test_no_shipped_model_card_or_result_names_a_folder_of_the_machine_that_made_it() -> None:
    # JSON strings (cards, comparison cells, benchmark figures) and SB3 zips' stored settings.
    machine_path = re.compile(r'"/(?:tmp|work|root|home)/')
    named = []
    for path in sorted([*(REPO / "models").rglob("*.json"), *(REPO / "docs").rglob("*.json")]):
        if machine_path.search(path.read_text()):
            named.append(path.relative_to(REPO))
    for path in sorted((REPO / "models").rglob("*.zip")):
        with ZipFile(path) as archive:
            if machine_path.search(archive.read("data").decode()):
                named.append(path.relative_to(REPO))
    assert not named, f"these name a folder of the machine that made them: {named}"
