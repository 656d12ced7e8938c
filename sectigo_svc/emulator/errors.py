"""The emulator's error replies: HTTP status and Sectigo ``errorCode`` chosen in one place."""

from __future__ import annotations

from sectigo_svc.emulator.http import ApiError

FAULT = -1
VALIDATION = -10
NOT_FOUND = -11
NOT_READY = -12
NO_LICENCES = -13
ALREADY_REVOKED = -14
UNSUPPORTED_MEDIA = -15
INVALID_CREDENTIALS = -16
NO_AUTHORITY = -17


def unauthorized(message: str) -> ApiError:
    return ApiError(401, message, INVALID_CREDENTIALS)


def forbidden(message: str) -> ApiError:
    return ApiError(403, message, NO_AUTHORITY)


def invalid(message: str) -> ApiError:
    return ApiError(400, message, VALIDATION)


def not_found(message: str) -> ApiError:
    return ApiError(404, message, NOT_FOUND)


def bad_method(message: str) -> ApiError:
    return ApiError(405, message, VALIDATION)


def not_ready(message: str) -> ApiError:
    return ApiError(400, message, NOT_READY)


def no_licences(message: str) -> ApiError:
    return ApiError(402, message, NO_LICENCES)


def already_revoked(message: str) -> ApiError:
    return ApiError(400, message, ALREADY_REVOKED)


def unsupported(message: str) -> ApiError:
    return ApiError(415, message, UNSUPPORTED_MEDIA)


def injected(status: int) -> ApiError:
    return ApiError(status, "Injected fault", FAULT)


def internal() -> ApiError:
    return ApiError(500, "Internal server error", FAULT)
