"""Alembic, driven from code: the scripts ship inside the package as `dropp/migrations`."""

from importlib.resources import files

from alembic.config import Config

from alembic import command
from dropp.core.config import Settings


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(files("dropp") / "migrations"))
    config.attributes["database_url"] = database_url
    return config


def upgrade(settings: Settings, revision: str = "head") -> None:
    command.upgrade(alembic_config(settings.async_database_url), revision)


def downgrade(settings: Settings, revision: str) -> None:
    command.downgrade(alembic_config(settings.async_database_url), revision)
