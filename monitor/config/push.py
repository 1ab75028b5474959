"""The `push:` targets (Uptime Kuma, Healthchecks, Gatus) and the `heartbeat:`: where the monitor
reports to monitors users already run. URLs and tokens are secrets (SecretStr: registered, redacted)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from monitor.checks import SPECS
from monitor.fields import Duration, FrozenModel

PUSH_TYPES = ("uptime_kuma", "healthchecks", "gatus")


def _http_url(value: SecretStr) -> SecretStr:
    parts = urlsplit(value.get_secret_value())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL (the value is not shown)")
    return value


class _UrlTarget(FrozenModel):
    """A URL the monitor reports to, given inline or in a file, and how long one attempt may take."""

    url: SecretStr | None = None  # a secret: whoever knows a push URL can report for it
    url_file: Path | None = None  # a file holding the URL (Docker and Kubernetes secrets)
    timeout: Duration = 10.0  # one attempt

    @field_validator("url")
    @classmethod
    def _url(cls, value: SecretStr | None) -> SecretStr | None:
        return None if value is None else _http_url(value)

    @model_validator(mode="after")
    def _one_url(self) -> _UrlTarget:
        if self.url is not None and self.url_file is not None:
            raise ValueError("set url or url_file, not both")
        if self.url is None and self.url_file is None:  # an unreadable url_file is reported alone
            raise ValueError("url is required (or url_file)")
        if not 0 < self.timeout <= 60:
            raise ValueError("timeout must be more than 0s and at most 60s")
        return self

    def target_url(self) -> str:
        assert self.url is not None
        return self.url.get_secret_value()


class PushBase(_UrlTarget):
    instance: str = Field(min_length=1)
    check: str | None = None  # one check's status; default: the instance as a whole

    @field_validator("check")
    @classmethod
    def _known_check(cls, value: str | None) -> str | None:
        if value is not None and value not in SPECS:
            raise ValueError(f"must be one of {', '.join(SPECS)}")
        return value

    # retries of one push stay within the instance's interval


class UptimeKumaPush(PushBase):
    """GET {url}?status=up|down&msg=<text>&ping=<ms>: an Uptime Kuma "push" monitor."""

    type: Literal["uptime_kuma"]


class HealthchecksPush(PushBase):
    """POST {url} (up) or {url}/fail (down) with the message as the body: a Healthchecks check."""

    type: Literal["healthchecks"]


class GatusPush(PushBase):
    """POST {url}/api/v1/endpoints/{key}/external?success=&error=&duration=, Bearer {token}."""

    type: Literal["gatus"]
    key: str | None = None  # the external endpoint's key, such as twofauth_home
    token: SecretStr | None = None
    token_file: Path | None = None

    @model_validator(mode="after")
    def _key_and_token(self) -> GatusPush:
        if not self.key:
            raise ValueError("gatus needs key (the external endpoint's key, such as twofauth_home)")
        if self.token is not None and self.token_file is not None:
            raise ValueError("set token or token_file, not both")
        if self.token_file is None and (self.token is None or not self.token.get_secret_value()):
            raise ValueError("gatus needs token (or token_file): the external endpoint's bearer token")
        return self


PushTarget = Annotated[UptimeKumaPush | HealthchecksPush | GatusPush, Field(discriminator="type")]


class Heartbeat(_UrlTarget):
    """GET {url} every interval while the monitor is ready; GET {url}/fail when it is not."""

    interval: Duration = 60.0

    @model_validator(mode="after")
    def _bounds(self) -> Heartbeat:
        if self.interval < 1:
            raise ValueError("interval must be at least 1s")
        return self
