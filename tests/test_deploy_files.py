"""The deploy files say what README and requirements say, and their start command really serves."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def dockerfile_env() -> dict[str, str]:
    block = re.search(r"^ENV (.*?)(?=^\S)", DOCKERFILE, re.S | re.M).group(1)
    return dict(re.findall(r"(\w+)=(\S+)", block))


def start_command() -> list[str]:
    return json.loads(re.search(r"^CMD (\[.*\])$", DOCKERFILE, re.M).group(1))


def test_start_command_is_readmes():
    """The container runs README's ``streamlit run app.py`` through ``ui.serve``, which warms the
    server first and then runs exactly that."""
    assert start_command() == ["python", "-m", "ui.serve"]
    readme, deploy = (ROOT / "README.md").read_text(), (ROOT / "docs" / "deploy.md").read_text()
    assert "streamlit run app.py" in readme and "python -m ui.serve" in readme and "python -m ui.serve" in deploy
    from ui import serve

    assert serve.APP == ROOT / "app.py" and '["streamlit", "run", str(APP)' in (ROOT / "ui" / "serve.py").read_text()


def test_torch_pin_and_requirements_match():
    pin = re.search(r"^torch==(\S+)$", (ROOT / "requirements.txt").read_text(), re.M).group(1)
    install = re.search(r"^RUN pip install (.*)$", DOCKERFILE, re.M).group(1)
    assert f'torch=={pin} --index-url "$TORCH_INDEX_URL"' in install  # the CPU build, from the index below by default
    assert re.search(r"^ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu$", DOCKERFILE, re.M)
    assert re.search(r"^ARG PIP_INDEX_URL=https://pypi.org/simple$", DOCKERFILE, re.M)
    assert 'pip install --index-url "$PIP_INDEX_URL" -r requirements.txt' in install
    assert f"pip install torch=={pin}" in (ROOT / ".ci" / "run").read_text()


def test_port_health_check_and_ignored_files():
    env = dockerfile_env()
    port = env["STREAMLIT_SERVER_PORT"]
    assert re.search(rf"^EXPOSE {port}$", DOCKERFILE, re.M)
    assert f"http://127.0.0.1:{port}/_stcore/health" in DOCKERFILE
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines() if line.strip()}
    assert not ignored & {"assets", "core", "pages", "app.py", "ui", "requirements.txt", ".streamlit"}
    assert f"app_port: {port}" in (ROOT / "docs" / "deploy.md").read_text()  # the Space's front matter in the deploy steps


def test_the_containers_settings_serve_the_app():
    """The container's start command with the Dockerfile's STREAMLIT_* variables (on a free port)
    answers the health check the container uses, after warming."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, **dockerfile_env(), "STREAMLIT_SERVER_PORT": str(port), "STREAMLIT_SERVER_ADDRESS": "127.0.0.1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, *start_command()[1:]], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 120  # the warm-up first (imports, the default model)
        while True:
            try:
                assert urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1).read() == b"ok"
                break
            except OSError:
                assert time.time() < deadline and proc.poll() is None, proc.stdout.read().decode()[-2000:] if proc.poll() is not None else "no answer in 60 s"
                time.sleep(0.3)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_pages_compile_from_source_and_need_no_magic():
    """Magic is off (``.streamlit/config.toml``): Streamlit then compiles a page from its source,
    never through ``ast.parse``, which Python 3.11 does not make thread-safe beside the background
    import's own parsing. No page writes a bare value, so magic would draw nothing."""
    import ast

    from streamlit import config

    assert config.get_option("runner.magicEnabled") is False
    for path in [ROOT / "app.py", *sorted((ROOT / "pages").glob("*.py"))]:
        tree = ast.parse(path.read_text())
        bare = [
            node.lineno for node in ast.walk(tree)
            if isinstance(node, ast.Expr) and not isinstance(node.value, ast.Call) and node is not tree.body[0]
            and not (isinstance(node.value, ast.Constant) and isinstance(node.value.value, str))  # docstrings
        ]
        assert not bare, f"{path.name} lines {bare}: a bare value that only magic would write"
