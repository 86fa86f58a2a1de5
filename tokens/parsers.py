"""DRF parsers that read at most MAX_BODY_BYTES and turn every bad body into a ParseError.

DRF's own parsers read the whole stream whatever its size, and its JSON parser lets a
RecursionError (deeply nested JSON) escape as a 500.
"""

from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.http import QueryDict
from rest_framework import exceptions, parsers

from .conf import roomkey_settings
from .inputs import loads_strict


class BodyTooLarge(exceptions.ParseError):
    status_code = 413
    default_detail = "Request body is too large."
    default_code = "body_too_large"


def _read_bounded(stream) -> bytes:
    if stream is None:
        return b""
    limit = roomkey_settings.MAX_BODY_BYTES
    body = stream.read(limit + 1)
    if len(body) > limit:
        raise BodyTooLarge(f"Request body is larger than {limit} bytes.")
    return body


class BoundedJSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        body = _read_bounded(stream)
        encoding = (parser_context or {}).get("encoding") or "utf-8"
        try:
            text = body.decode(encoding)
        except (UnicodeError, LookupError):
            raise exceptions.ParseError(f"Request body is not valid {encoding}.") from None
        try:
            return loads_strict(text)
        except RecursionError:
            raise exceptions.ParseError("JSON is nested too deeply.") from None
        except ValueError as exc:
            raise exceptions.ParseError(f"JSON parse error - {exc}") from None


class BoundedFormParser(parsers.FormParser):
    def parse(self, stream, media_type=None, parser_context=None):
        body = _read_bounded(stream)
        encoding = (parser_context or {}).get("encoding") or "utf-8"
        try:
            return QueryDict(body, encoding=encoding)
        except (TooManyFieldsSent, UnicodeError, LookupError) as exc:
            raise exceptions.ParseError(str(exc)) from None


def as_api_exception(exc: Exception) -> Exception:
    """Django's own request-body errors, raised when DRF reads `request.body` before any
    parser runs, as the API exceptions every endpoint knows how to answer."""
    if isinstance(exc, RequestDataTooBig):
        return BodyTooLarge()
    if isinstance(exc, TooManyFieldsSent | UnicodeDecodeError):
        return exceptions.ParseError(str(exc))
    return exc
