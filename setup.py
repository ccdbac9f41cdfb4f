"""ament_python package: code in bresa_control/, data folders installed into share/bresa_control."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "bresa_control"
DATA_FOLDERS = ("launch", "config", "models", "sim")
# The shipped models of each method that keeps its own folder (models/recovery_rl/, models/fisor/...)
# and of each other task (models/maze/ and its method folders): installed beside models/ so that a
# robot PC runs them from share/. Not the training seeds (any seeds/) or a new set under comparison
# (models/candidates/, when there is one): those are for the comparison, run from the source tree.
NOT_INSTALLED = ("seeds", "candidates")
MODEL_FOLDERS = tuple(sorted(d.rstrip("/") for d in glob("models/**/", recursive=True)
                             if d.rstrip("/") != "models" and not set(d.split("/")) & set(NOT_INSTALLED)))

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
    ]
    + [(f"share/{PACKAGE}/{folder}", sorted(glob(f"{folder}/*.*"))) for folder in DATA_FOLDERS + MODEL_FOLDERS],
    python_requires=">=3.10",
    install_requires=[
        "numpy",
        "pyyaml",
        "mujoco>=3.3",
        "pin>=3.4",
        "example-robot-data>=4.3",
        "gymnasium>=1.0",
        "stable-baselines3==2.9.2",  # pinned: sac_lagrangian.py overrides a private method of its buffer
        "tqdm",
        "rich",
        "tensorboard",
        "rosbags>=0.10",
        "matplotlib",
        "wrapt>=1.16",
        "pylibfranka>=0.21,<0.22",  # libfranka for the franka_arm node (robot server version 10)
        "franky-sim>=1.0.4,<1.1",  # the Franka protocol simulator behind bresa demo --arm franky-sim
        "ray==2.60.0",  # --ray: evaluation, comparison and multi-seed training on Ray (app/sweep.py)
    ],
    extras_require={"test": ["pytest", "hypothesis", "colcon-common-extensions", "ruff", "mypy", "import-linter"]},
    zip_safe=True,
    maintainer="bresa_control maintainers",
    maintainer_email="maintainers@bresa-control.dev",
    description="Bresa: reflexive safe RL for contact-rich manipulation (ROS 2, MuJoCo, Franka)",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            f"bresa = {PACKAGE}.app.cli:main",
            f"mujoco_sim = {PACKAGE}.ros.sim_node:main",
            f"safety_critic = {PACKAGE}.ros.critic_node:main",
            f"task_policy = {PACKAGE}.ros.policy_node:main",
            f"franka_arm = {PACKAGE}.ros.franka_arm_node:main",
            f"franky_sim = {PACKAGE}.ros.franky_sim_node:main",
        ]
    },
)
