"""The 2FA accounts and the user a simulated instance holds: plain data, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from monitor.otp import Algorithm, OtpType

CANARY_ACCOUNT_ID = 1
HOTP_ACCOUNT_ID = 2
STEAM_ACCOUNT_ID = 3

# Fixed, public test secrets (160 bits each): nothing real is protected by them.
DEFAULT_CANARY_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"  # noqa: S105
DEFAULT_HOTP_SECRET = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"  # noqa: S105
DEFAULT_STEAM_SECRET = "MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43U"  # noqa: S105

DEFAULT_USER_ID = 1
DEFAULT_USER_NAME = "admin"
DEFAULT_USER_EMAIL = "admin@example.org"

# What 2FAuth shows in place of a field its APP_KEY cannot decipher.
INDECIPHERABLE = "*indecipherable*"


@dataclass(frozen=True, slots=True)
class Account:
    """One stored 2FA account, as 2FAuth keeps it (secret upper-cased and '='-padded)."""

    id: int
    otp_type: OtpType
    account: str
    service: str | None
    secret: str
    digits: int = 6
    algorithm: Algorithm = "sha1"
    period: int | None = 30
    counter: int | None = None
    group_id: int | None = None
    icon: str | None = None

    def with_counter(self, counter: int) -> Account:
        return replace(self, counter=counter)

    def to_json(self, *, with_secret: bool, indecipherable: bool) -> dict[str, Any]:
        """The account the way `TwoFAccountReadResource` renders it, without the `otp` key."""
        hidden = INDECIPHERABLE if indecipherable else None
        body: dict[str, Any] = {
            "id": self.id,
            "group_id": self.group_id,
            "otp_type": self.otp_type,
            "account": hidden or self.account,
            "service": hidden or self.service,
            "icon": self.icon,
        }
        if with_secret:
            body["secret"] = hidden or self.secret
        body.update(digits=self.digits, algorithm=self.algorithm, period=self.period, counter=self.counter)
        return body


def default_accounts() -> tuple[Account, ...]:
    """A TOTP canary, a HOTP account that must never be polled, and a Steam account."""
    return (
        Account(CANARY_ACCOUNT_ID, "totp", "canary", "2fauth-monitor", DEFAULT_CANARY_SECRET),
        Account(
            HOTP_ACCOUNT_ID,
            "hotp",
            "hotp-do-not-poll",
            "Example",
            DEFAULT_HOTP_SECRET,
            period=None,
            counter=0,
        ),
        Account(STEAM_ACCOUNT_ID, "steamtotp", "steam-user", "Steam", DEFAULT_STEAM_SECRET, digits=5),
    )


# The preferences 2FAuth 5.4.3 returns for a new user (getOfficialIcons as the fixture sets it).
V5_PREFERENCES: dict[str, Any] = {
    "showOtpAsDot": False,
    "revealDottedOTP": False,
    "closeOtpOnCopy": False,
    "copyOtpOnDisplay": False,
    "clearSearchOnCopy": False,
    "useBasicQrcodeReader": False,
    "displayMode": "list",
    "showAccountsIcons": True,
    "kickUserAfter": 15,
    "activeGroup": 0,
    "rememberActiveGroup": True,
    "viewDefaultGroupOnCopy": False,
    "defaultGroup": 0,
    "defaultCaptureMode": "livescan",
    "useDirectCapture": False,
    "useWebauthnOnly": False,
    "getOfficialIcons": False,
    "theme": "system",
    "formatPassword": True,
    "formatPasswordBy": 0.5,
    "lang": "browser",
    "getOtpOnRequest": True,
    "notifyOnNewAuthDevice": False,
    "notifyOnFailedLogin": False,
    "timezone": "UTC",
    "sortCaseSensitive": False,
    "autoCloseTimeout": 2,
    "AutoSaveQrcodedAccount": False,
    "showEmailInFooter": True,
}


def user_json(*, v5: bool = False) -> dict[str, Any]:
    """`GET /api/v1/user` for the simulated administrator (2FAuth 5 has no appSettings)."""
    user: dict[str, Any] = {
        "id": DEFAULT_USER_ID,
        "name": DEFAULT_USER_NAME,
        "email": DEFAULT_USER_EMAIL,
        "oauth_provider": None,
        "authenticated_by_proxy": False,
        "preferences": dict(V5_PREFERENCES) if v5 else {},
    }
    if not v5:
        user["appSettings"] = {"enableSharing": False, "enableAllUsersSharingScope": False}
    user["is_admin"] = True  # last, in the order 2FAuth sends
    return user
