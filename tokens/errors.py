"""Roomkey's error vocabulary, and how each response contract renders it.

Services raise a few application errors: bad input (with its field), unauthorized, forbidden,
not found, conflict, unavailable. A class's docstring is its default message and its `code` and
`status` are class attributes, so a raise names only what is particular to it.

Each HTTP contract Roomkey serves (SignalWire's, Vatel's, the web-call envelope, DRF's) has one
`ErrorFormat`; a view declares the one it speaks (`error_format`), and every error it can meet
— an application error, DRF's and Django's request errors, 404, 405, a body over the limit, an
unexpected exception (500) — is answered in that shape. Requests that reach no view (an
unroutable path, a body refused before Django reads it) find their format by path through
`format_for_path`, where each app registers the paths of its contracts.

The module is a little over 400 lines on purpose: the vocabulary, the classification of every
exception and the pages that answer outside views are kept together, so which status and shape
an error gets is decided in one file.
"""

import logging
from collections.abc import Iterable

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler

from .guards import request_guards
from .inputs import encodable_json

log = logging.getLogger(__name__)


class ApplicationError(Exception):
    """Internal server error."""

    status = 500
    code = "error"

    def __init__(
        self,
        message: str | None = None,
        *,
        field: str | None = None,
        code: str | None = None,
        status: int | None = None,
        headers: dict | None = None,
        **extra,
    ):
        self.message = message if message is not None else (type(self).__doc__ or "").strip()
        self.field = field
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.headers = headers or {}
        self.extra = extra  # further members of the error body, where a contract has them
        super().__init__(self.message)

    @property
    def described(self) -> str:
        """ "field: message", or the message alone."""
        return f"{self.field}: {self.message}" if self.field else self.message


class BadInput(ApplicationError):
    """Invalid input."""

    status = 422
    code = "invalid"


class BadRequest(ApplicationError):
    """The request cannot be read (malformed or oversized body, wrong content type)."""

    status = 400
    code = "invalid_request"


class Unauthorized(ApplicationError):
    """Authentication credentials were not provided or are not valid."""

    status = 401
    code = "unauthorized"


class Forbidden(ApplicationError):
    """You do not have permission to perform this action."""

    status = 403
    code = "forbidden"


class NotFound(ApplicationError):
    """Not found."""

    status = 404
    code = "not_found"


class MethodNotAllowed(ApplicationError):
    """Method not allowed."""

    status = 405
    code = "method_not_allowed"


class Conflict(ApplicationError):
    """Conflict with the current state of the resource."""

    status = 409
    code = "conflict"


class RateLimited(ApplicationError):
    """Too many requests."""

    status = 429
    code = "rate_limited"


class Unavailable(ApplicationError):
    """Service temporarily unavailable."""

    status = 503
    code = "unavailable"


class DatabaseUnavailable(Unavailable):
    """The database is unavailable; try again shortly."""

    code = "database_unavailable"


# The database could not be asked: it refused or dropped the connection, did not answer in
# time (the statement and answer timeouts, config.postgres), or the pool had no connection to
# give in time (psycopg_pool's PoolTimeout). Django raises them as these two (PEP 249:
# errors of the database's operation, not of the request). They are no verdict on the
# request: a token checked during an outage is neither valid nor invalid, the answer is 503,
# and a socket closes with 1013 (tokens.live). Other database errors (integrity, data) stay
# what they are.
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError)


# --- From any exception to application errors ---------------------------------------------


def _flatten(detail, field=None) -> list[tuple[str | None, object]]:
    """DRF error detail (dict / list / ErrorDetail) -> [(dotted field or None, ErrorDetail)]."""
    if isinstance(detail, dict):
        out = []
        for key, value in detail.items():
            name = None if key == "non_field_errors" else str(key)
            if field and name:
                name = f"{field}.{name}"
            out.extend(_flatten(value, name or field))
        return out
    if isinstance(detail, list):
        return [item for value in detail for item in _flatten(value, field)]
    return [(field, detail)]


def _code_of(exc: exceptions.APIException, default: str) -> str:
    code = exc.get_codes()
    return code if isinstance(code, str) else default


def application_errors(exc: BaseException) -> list[ApplicationError]:
    """Any exception a view can meet as application errors (at least one). Unexpected ones are
    logged with their traceback and become one 500."""
    if isinstance(exc, ApplicationError):
        return [exc]
    if isinstance(exc, DATABASE_UNAVAILABLE):
        log.warning("database unavailable: %s", exc)
        return [DatabaseUnavailable()]
    if isinstance(exc, RequestDataTooBig):
        return [BadRequest("Request body is too large.", code="body_too_large", status=413)]
    if isinstance(exc, TooManyFieldsSent | UnicodeDecodeError):
        # A request Django cannot decode. (An answer that cannot be encoded is ours: a 500.)
        return [BadRequest(str(exc), code="parse_error")]
    if isinstance(exc, Http404):
        return [NotFound()]
    if isinstance(exc, DjangoPermissionDenied):
        return [Forbidden()]
    if isinstance(exc, exceptions.ValidationError):
        return [
            BadInput(str(detail), field=field, code=getattr(detail, "code", None) or "invalid")
            for field, detail in _flatten(exc.detail)
        ] or [BadInput()]
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        return [Unauthorized(str(exc.detail), code=_code_of(exc, Unauthorized.code))]
    if isinstance(exc, exceptions.APIException):
        kind = {
            403: Forbidden,
            404: NotFound,
            405: MethodNotAllowed,
            409: Conflict,
            429: RateLimited,
            503: Unavailable,
        }.get(exc.status_code, BadRequest)
        headers = {}
        if getattr(exc, "wait", None) is not None:
            headers["Retry-After"] = str(int(exc.wait))
        return [
            kind(
                str(exc.detail) if not isinstance(exc.detail, dict | list) else None,
                code=_code_of(exc, kind.code),
                status=exc.status_code,
                headers=headers,
            )
        ]
    log.error("unexpected error", exc_info=(type(exc), exc, exc.__traceback__))
    return [ApplicationError()]


# --- Contracts ----------------------------------------------------------------------------


class ErrorFormat:
    """How one response contract answers errors. `render` is a pure function of the errors and
    the server's base URL (for documentation links), so the same answer can be given by a view,
    by the 404 of an unroutable path and by the ASGI body limit before Django runs."""

    # The WWW-Authenticate challenge sent with a 401.
    challenge = 'Bearer realm="roomkey"'

    def render(self, errors: list[ApplicationError], *, base_url: str) -> tuple[int, dict]:
        raise NotImplementedError

    def headers(self, errors: list[ApplicationError]) -> dict:
        headers = {}
        for error in errors:
            headers.update(error.headers)
        if errors[0].status == 401:
            headers.setdefault("WWW-Authenticate", self.challenge)
        return headers

    def response(self, request, exc: BaseException) -> Response:
        """A DRF Response for `exc`, as this contract answers it."""
        errors = application_errors(exc)
        status, body = self.render(errors, base_url=_base_url(request))
        return Response(body, status=status, headers=self.headers(errors))

    def django_response(self, request, errors: list[ApplicationError]) -> HttpResponse:
        """The same answer outside DRF (an unroutable path, a 500 outside a view)."""
        status, body = self.render(errors, base_url=_base_url(request))
        response = HttpResponse(
            encodable_json(body), status=status, content_type="application/json"
        )
        for name, value in self.headers(errors).items():
            response[name] = value
        return response


def _base_url(request) -> str:
    try:
        return request.build_absolute_uri("/").rstrip("/")
    except Exception:  # a Host header Django refuses: the links are relative then
        return ""


class DRFErrors(ErrorFormat):
    """Roomkey's own API (`/api/v1/…`), with DRF's conventions: `{"detail": …}`, or
    `{field: [messages]}` with 400 for invalid input."""

    def render(self, errors, *, base_url):
        first = errors[0]
        if isinstance(first, BadInput):
            body: dict = {}
            for error in errors:
                body.setdefault(error.field or "non_field_errors", []).append(error.message)
            return 400, body
        return first.status, {"detail": first.message, **first.extra}

    def response(self, request, exc):
        # DRF's own errors keep DRF's own bodies (nested field errors stay nested).
        if not isinstance(exc, ApplicationError):
            from .parsers import as_api_exception

            response = exception_handler(as_api_exception(exc), {"request": request})
            if response is not None:
                return response
        return super().response(request, exc)


DRF_ERRORS = DRFErrors()


class ContractErrorsMixin:
    """For DRF views and viewsets: every error is answered by the view's `error_format`, and
    the registered request guards (tokens.guards: rate limits) run around authentication."""

    error_format: ErrorFormat = DRF_ERRORS

    def initial(self, request, *args, **kwargs):
        # Guards run before the credentials are looked at (a client over its budget of failed
        # authentications is refused without a key lookup), and again once the caller is known.
        for guard in request_guards():
            guard.before_authentication(request, self)
        super().initial(request, *args, **kwargs)
        for guard in request_guards():
            guard.after_authentication(request, self)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        for guard in request_guards():
            for name, value in guard.response_headers(request, self).items():
                response.setdefault(name, value)
        return response

    def handle_exception(self, exc):
        if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
            for guard in request_guards():
                exc = guard.authentication_failed(self.request, self, exc)
        if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
            # DRF's own answer picks the challenge of the view's first authenticator.
            header = self.get_authenticate_header(self.request)
            response = self.error_format.response(self.request, exc)
            if header and self.error_format is DRF_ERRORS:
                response["WWW-Authenticate"] = header
            return response
        return self.error_format.response(self.request, exc)


# --- Paths that reach no view -------------------------------------------------------------

_formats_by_prefix: dict[str, ErrorFormat] = {}


def register_error_format(prefix: str, error_format: ErrorFormat) -> None:
    """Requests whose path is `prefix` or starts with it (the longest registered prefix wins)
    are answered in `error_format` when no view answers them. Apps register their contracts'
    paths in their AppConfig.ready()."""
    _formats_by_prefix[prefix] = error_format


def format_for_path(path: str) -> ErrorFormat | None:
    """The error format of `path`, or None for a path that is not an API (the landing page,
    the admin: Django's own pages)."""
    best = None
    for prefix, error_format in _formats_by_prefix.items():
        if path.startswith(prefix) and (best is None or len(prefix) > len(best[0])):
            best = (prefix, error_format)
    return best[1] if best else None


def api_prefixes() -> Iterable[str]:
    return tuple(_formats_by_prefix)


register_error_format("/api/", DRF_ERRORS)


@csrf_exempt  # an API's 404 whatever the method: the CSRF check would answer a POST in HTML
def unrouted(request, *args, **kwargs):
    """The 404 of a path under an API prefix that no route matches (in DEBUG as well: Django's
    technical 404 page is HTML)."""
    error_format = format_for_path(request.path) or DRF_ERRORS
    return error_format.django_response(request, [NotFound()])


def server_error(request, *args, **kwargs):
    """handler500: an API path's 500 in its contract's format, Django's page elsewhere."""
    error_format = format_for_path(request.path)
    if error_format is None:
        from django.views.defaults import server_error as django_server_error

        return django_server_error(request, *args, **kwargs)
    return error_format.django_response(request, [ApplicationError()])


def page_not_found(request, exception=None, *args, **kwargs):
    """handler404: an API path's 404 in its contract's format, Django's page elsewhere."""
    error_format = format_for_path(request.path)
    if error_format is None:
        from django.views.defaults import page_not_found as django_page_not_found

        return django_page_not_found(request, exception, *args, **kwargs)
    return error_format.django_response(request, [NotFound()])


def bad_request(request, exception=None, *args, **kwargs):
    """handler400 (a Host header outside ALLOWED_HOSTS, a suspicious request): an API path's
    400 in its contract's format, Django's page elsewhere."""
    error_format = format_for_path(request.path)
    if error_format is None:
        from django.views.defaults import bad_request as django_bad_request

        return django_bad_request(request, exception, *args, **kwargs)
    return error_format.django_response(request, [_BY_STATUS[400](status=400)])


_BY_STATUS = {
    400: lambda status: BadRequest("Bad request.", status=status),
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    405: MethodNotAllowed,
    409: Conflict,
    413: lambda status: BadRequest(status=status),
    429: RateLimited,
    503: Unavailable,
}


class APIErrorsMiddleware:
    """The safety net under every API path: an exception escaping a view is answered in the
    path's format (500), and an HTML error page that Django made before any view ran (a Host
    outside ALLOWED_HOSTS in DEBUG, where handler400 is not used) becomes the same status in
    the path's format. Outermost in MIDDLEWARE, so it sees what the other middleware answer."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if response.status_code < 400 or not response.get("Content-Type", "").startswith(
            "text/html"
        ):
            return response
        error_format = format_for_path(request.path)
        if error_format is None:
            return response
        make = _BY_STATUS.get(response.status_code, ApplicationError)
        error = make(status=response.status_code)
        return error_format.django_response(request, [error])

    def process_exception(self, request, exception):
        error_format = format_for_path(request.path)
        if error_format is None:
            if isinstance(exception, DATABASE_UNAVAILABLE):
                # The site's own pages (landing, admin) say "unavailable" too, not "error".
                log.warning("database unavailable: %s", exception)
                return HttpResponse(_UNAVAILABLE_PAGE, status=503)
            return None
        return error_format.django_response(request, application_errors(exception))


_UNAVAILABLE_PAGE = (
    '<!doctype html>\n<html lang="en"><head><title>Service Unavailable (503)</title></head>'
    f"<body><h1>Service Unavailable (503)</h1><p>{DatabaseUnavailable.__doc__}</p></body></html>\n"
)
