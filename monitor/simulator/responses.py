"""Error answers shaped like 2FAuth's exception handler and Laravel's defaults."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

UNAUTHENTICATED = {"message": "Unauthenticated."}
NOT_FOUND = {"message": "not found"}
UNKNOWN_ENDPOINT = {"message": "unknowkn endpoint"}  # sic: the typo is 2FAuth's
SERVER_ERROR = {"message": "Server Error"}
TOO_MANY_ATTEMPTS = {"message": "Too Many Attempts."}
SERVICE_UNAVAILABLE = {"message": "Service Unavailable"}
NOT_BASE32 = {"message": "not a valid base32 encoded secret"}
CANNOT_DECIPHER = {
    "message": "The secret cannot be deciphered. The APP_KEY may have changed, or the stored data is corrupted."
}

# 2FAuth 5.4.3's wording, verbatim (the real server's answer)
CANNOT_DECIPHER_V5 = {
    "message": "The secret cannot be deciphered. This is mainly caused by a wrong APP_KEY set in the .env "
    "configuration file of 2Fauth or a corrupted data stored in database."
}


class ApiError(Exception):
    """An API answer other than 200, raised from deep inside a handler."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(status, body)
        self.status = status
        self.body = body

    def response(self) -> JSONResponse:
        return JSONResponse(self.body, status_code=self.status)


def validation_error(errors: dict[str, list[str]]) -> ApiError:
    """422 like Laravel's ValidationException: the first message, then how many more."""
    messages = [message for field_messages in errors.values() for message in field_messages]
    summary = messages[0]
    more = len(messages) - 1
    if more:
        summary += f" (and {more} more error{'s' if more > 1 else ''})"
    return ApiError(422, {"message": summary, "errors": errors})


def invalid_otp_parameters(reason: str) -> ApiError:
    return ApiError(400, {"message": "invalid OTP parameters", "reason": [reason]})
