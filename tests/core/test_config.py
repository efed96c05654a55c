from pathlib import Path

import pytest

from dropp.core.config import ConfigError, Settings
from dropp.main import create_app

DATABASE_URL = "postgresql://dropp:dropp@db.internal:5432/dropp"


def configured(**values: object) -> Settings:
    return Settings(_env_file=None, database_url=DATABASE_URL, **values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "secret_key",
    [None, "", "change-me", "secret", "short-but-not-a-placeholder"],
    ids=["missing", "empty", "placeholder", "word", "short"],
)
def test_production_refuses_a_weak_secret_key(secret_key: str | None) -> None:
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        create_app(configured(secret_key=secret_key))


def test_production_starts_with_a_real_secret_key() -> None:
    app = create_app(configured(secret_key="k" * 48))

    assert app.title == "Dropp"


def test_half_a_key_pair_is_refused() -> None:
    with pytest.raises(ConfigError, match="AWS_SECRET_ACCESS_KEY"):
        create_app(configured(secret_key="k" * 48, aws_access_key_id="only-the-id"))


def test_plain_postgres_urls_use_asyncpg() -> None:
    assert configured().async_database_url.startswith("postgresql+asyncpg://")


def test_presigned_urls_use_the_public_endpoint_when_set() -> None:
    settings = configured(
        s3_endpoint_url="http://minio:9000", s3_public_endpoint_url="https://files.example.com"
    )

    assert settings.public_endpoint_url == "https://files.example.com"


def test_no_database_url_means_the_embedded_stack() -> None:
    settings = Settings(_env_file=None, database_url=None, s3_endpoint_url=None)

    assert settings.embedded
    assert settings.embedded_storage


def test_libpq_sslmode_becomes_asyncpg_ssl() -> None:
    settings = Settings(
        _env_file=None, database_url="postgresql://u:p@db:5432/dropp?sslmode=require"
    )

    assert settings.async_database_url == "postgresql+asyncpg://u:p@db:5432/dropp?ssl=require"


def test_an_empty_variable_counts_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_KEY", "")
    monkeypatch.setenv("DATABASE_URL", "")

    settings = Settings(_env_file=None)

    assert settings.secret_key is None
    assert settings.embedded


def test_every_setting_is_documented() -> None:
    root = Path(__file__).resolve().parents[2]
    example = (root / ".env.example").read_text()
    reference = (root / "docs" / "settings.md").read_text()
    names = [
        "DROPP_DATA_DIR" if name == "data_dir" else name.upper() for name in Settings.model_fields
    ]

    assert [name for name in names if f"{name}=" not in example] == []
    assert [
        name for name in names if f"`{name}`" not in reference and f"`{name} " not in reference
    ] == []
