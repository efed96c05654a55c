"""Signing in with a password from a script, and what a device keeps of it."""

import json
import stat

from tests.client.conftest import DeviceFactory
from tests.helpers import Account


def test_password_sign_in_saves_the_server_and_a_private_session(
    make_device: DeviceFactory, account: Account
) -> None:
    device = make_device("a", account)
    config = json.loads((device.config_dir / "config.json").read_text())
    assert config["server"] == device.server
    credentials = device.config_dir / "credentials.json"
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600

    whoami = json.loads(device.run("whoami", "--json").stdout)
    assert whoami["account"]["email"] == account.email
    assert whoami["usage"]["files"] == 0


def test_logout_revokes_the_session_on_the_server(
    make_device: DeviceFactory, account: Account
) -> None:
    device = make_device("a", account)
    saved = json.loads((device.config_dir / "credentials.json").read_text())[device.server]
    device.run("logout")
    refused = device.run("whoami", check=False)
    assert refused.returncode == 3
    assert "dropp login" in refused.stderr
    # The refresh token is dead on the server too, not only forgotten here.
    other = make_device("b")
    other.config_dir.mkdir(parents=True)
    (other.config_dir / "credentials.json").write_text(json.dumps({device.server: saved}))
    (other.config_dir / "credentials.json").chmod(0o600)
    assert other.run("whoami", check=False).returncode == 3
