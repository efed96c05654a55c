"""Starting SeaweedFS when a port it was given is taken before it binds it."""

import json
import socket
import tempfile
from pathlib import Path

import httpx
import pytest

from dropp.embedded import seaweedfs


def test_a_port_taken_before_weed_binds_it_makes_a_new_set_of_ports(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with tempfile.TemporaryDirectory(prefix="dropp-test-") as workdir, socket.socket() as squatter:
        data_dir = Path(workdir) / "s3"
        data_dir.mkdir()
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        # The ports of an earlier run, one of which another process holds by now, though it
        # looked free when checked: the race between checking a port and weed binding it.
        earlier = {flag: seaweedfs.free_port() for flag in seaweedfs.PORT_FLAGS}
        earlier["s3.port.grpc"] = taken
        (data_dir / "ports.json").write_text(json.dumps(earlier))
        checked_free = seaweedfs._is_free
        monkeypatch.setattr(seaweedfs, "_is_free", lambda port: port == taken or checked_free(port))

        with seaweedfs.run_seaweedfs(data_dir, "key", "secret-key") as s3:
            assert httpx.get(s3.endpoint_url, timeout=5).status_code < 500
            ports = json.loads((data_dir / "ports.json").read_text())

        assert taken not in ports.values()
        assert len(set(ports.values())) == len(ports), "every listener gets its own port"
