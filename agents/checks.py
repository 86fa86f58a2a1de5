"""Deploy checks for the LiveKit settings (`manage.py check --deploy`)."""

from django.conf import settings
from django.core import checks

LIVEKIT_SECRET_MIN_CHARS = 32  # HS256 wants a key at least as long as its output


@checks.register(checks.Tags.security, deploy=True)
def livekit_secret_check(app_configs, **kwargs):
    secret = getattr(settings, "LIVEKIT_API_SECRET", "")
    errors = []
    if secret and secret == getattr(settings, "LIVEKIT_DEV_API_SECRET", None):
        errors.append(
            checks.Error(
                "LIVEKIT_API_SECRET is the development secret, which is public.",
                hint="Set LIVEKIT_API_SECRET to your LiveKit server's secret, or leave it unset "
                "and give each project its own LiveKit configuration.",
                id="agents.E001",
            )
        )
    elif secret and len(secret) < LIVEKIT_SECRET_MIN_CHARS:
        errors.append(
            checks.Warning(
                f"LIVEKIT_API_SECRET is shorter than {LIVEKIT_SECRET_MIN_CHARS} characters.",
                hint="Use the long random secret LiveKit generates (livekit-server generate-keys).",
                id="agents.W001",
            )
        )
    return errors
