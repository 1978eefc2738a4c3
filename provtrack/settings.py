"""Settings, from arguments or PROVTRACK_* environment variables. Built in bootstrap, never at import."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PROVTRACK_", extra="ignore")

    database_url: str = Field(
        default="sqlite:///./provtrack.db",
        description="sqlite:///PATH (WAL mode) or postgresql://USER@HOST:PORT/DB",
    )
    host: str = "127.0.0.1"
    port: int = 8641
    public_url: str | None = Field(
        default=None,
        description="base URL used in href values (e.g. https://som.example.net); default: the request's",
    )
    max_limit: int = Field(default=1000, description="largest page a list request may ask for")
    default_limit: int = Field(default=100, description="page size when a list request gives no limit")
    max_body_bytes: int = Field(default=1024 * 1024, description="largest request body accepted")
    worker_threads: int = Field(default=8, description="jobs run at once by one worker")
    worker_poll_seconds: float = Field(
        default=1.0, description="longest wait between two looks at the job table (wake-ups are instant)"
    )
    log_level: str = "info"
    access_log: bool = False
