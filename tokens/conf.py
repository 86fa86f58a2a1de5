"""Roomkey's settings, read at call time.

`settings.ROOMKEY` is one dict; `roomkey_settings.NAME` reads a key of it with its default.
The cache is dropped on `setting_changed`, so tests change values with the `settings` fixture.
"""

from datetime import timedelta

from django.conf import settings
from django.core.signals import setting_changed

DEFAULTS = {
    "TOKEN_RETENTION": timedelta(days=30),
    "CLEAR_BATCH_SIZE": 1000,
    "SIGNING_KEY_CACHE_SECONDS": 5.0,
    "MAX_BODY_BYTES": 1024 * 1024,
    # Tokens longer than this are refused before any decoding.
    "MAX_TOKEN_BYTES": 8 * 1024,
    # ApiKey.last_used_at is written at most this often per key.
    "API_KEY_TOUCH_SECONDS": 60,
}


class AppSettings:
    """One settings dict (`settings.<name>`) read key by key with `defaults`, cached until a
    `setting_changed` for it. Other apps make their own (agents.conf)."""

    def __init__(self, name: str, defaults: dict):
        self._name = name
        self._defaults = defaults
        self._cache: dict | None = None
        setting_changed.connect(self._reload, weak=False)

    def _values(self) -> dict:
        if self._cache is None:
            self._cache = {**self._defaults, **getattr(settings, self._name, {})}
        return self._cache

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self._values()[name]
        except KeyError:
            raise AttributeError(f"Unknown {self._name} setting {name!r}") from None

    def reload(self):
        self._cache = None

    def _reload(self, *, setting, **kwargs):
        if setting == self._name:
            self.reload()


roomkey_settings = AppSettings("ROOMKEY", DEFAULTS)
