import pytest

from dropp.core.config import Settings
from dropp.storage.s3 import StorageError, open_storage


async def test_storage_without_credentials_refuses_to_open(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # Nothing in the environment, no config file, and no instance metadata lookup off loopback.
    empty = tmp_path_factory.mktemp("aws")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", raising=False)
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", raising=False)
    anonymous = settings.model_copy(
        update={"aws_access_key_id": None, "aws_secret_access_key": None}
    )

    with pytest.raises(StorageError, match="No S3 credentials"):
        async with open_storage(anonymous):
            pass
