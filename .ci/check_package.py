"""Check the built distributions: the wheel carries py.typed, the console script and one version;
the wheel installs into a fresh virtual environment and its command runs there."""

from __future__ import annotations

import configparser
import subprocess
import sys
import tempfile
import venv
import zipfile
from pathlib import Path


def main(dist: Path) -> int:
    wheels = sorted(dist.glob("openai_ws-*.whl"))
    sdists = sorted(dist.glob("openai_ws-*.tar.gz"))
    assert len(wheels) == 1, wheels
    assert len(sdists) == 1, sdists
    wheel = wheels[0]
    version = wheel.name.split("-")[1]
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        assert "openai_ws/py.typed" in names, "py.typed missing from the wheel"
        assert "openai_ws/testing/__init__.py" in names
        info = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        entry_points = configparser.ConfigParser()
        entry_points.read_string(archive.read(info).decode())
        assert entry_points["console_scripts"]["openai-ws"] == "openai_ws.cli:main"
        version_file = archive.read("openai_ws/_version.py").decode()
        assert f'__version__ = "{version}"' in version_file, (
            "the wheel's name and _version.py disagree"
        )
    with tempfile.TemporaryDirectory() as tmp:
        env = Path(tmp) / "venv"
        venv.EnvBuilder(with_pip=True).create(env)
        python = env / "bin" / "python"
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", f"{wheel}[testing]"], check=True
        )
        out = subprocess.run(
            [str(env / "bin" / "openai-ws"), "--version"],
            check=True,
            capture_output=True,
            text=True,
        )
        assert out.stdout.strip() == f"openai-ws {version}", out.stdout
        subprocess.run(
            [
                str(python),
                "-c",
                "import openai_ws.testing, openai_ws; print(openai_ws.__version__)",
            ],
            check=True,
        )
    print(f"ok: {wheel.name} and {sdists[0].name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(Path(sys.argv[1])))
