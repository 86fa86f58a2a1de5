"""Request guards: checks every API view runs around its authentication, registered by the
apps that provide them (the limits app's rate limits), so tokens needs to know none of them.

`tokens.errors.ContractErrorsMixin` calls each registered guard: `before_authentication`
before any credential is looked at, `after_authentication` once the caller is known (either
may raise an application error, answered in the view's format), `authentication_failed` with
the error a failed authentication raised (it returns the error to answer with), and
`response_headers` for every response.
"""


class RequestGuard:
    def before_authentication(self, request, view) -> None:
        pass

    def after_authentication(self, request, view) -> None:
        pass

    def authentication_failed(self, request, view, exc: BaseException) -> BaseException:
        return exc

    def response_headers(self, request, view) -> dict:
        return {}


_guards: list[RequestGuard] = []


def register_request_guard(guard: RequestGuard) -> None:
    """Add `guard` (replacing a guard of the same class)."""
    _guards[:] = [g for g in _guards if type(g) is not type(guard)] + [guard]


def request_guards() -> tuple[RequestGuard, ...]:
    return tuple(_guards)
