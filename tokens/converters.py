"""URL path converters. `<text:name>` is `<str:name>` for a segment that names something
stored: a segment holding a NUL (which PostgreSQL cannot take in a query) or a lone surrogate
does not match, so the path is that contract's 404 (tokens.errors.unrouted), like any path
that names nothing. Registered by TokensConfig.ready()."""

from django.urls.converters import StringConverter


class TextConverter(StringConverter):
    regex = "[^/\x00\ud800-\udfff]+"
