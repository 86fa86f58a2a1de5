from django.core.management.base import BaseCommand

from agents import services
from agents.conf import agents_settings


class Command(BaseCommand):
    # Not `clearsessions`: that is Django's own, for login sessions.
    help = (
        "End call sessions past their expiry (revoking their tool tokens) and delete sessions "
        "ended longer ago than ROOMKEY_AGENTS['CALL_SESSION_RETENTION'], in batches."
    )

    def handle(self, *args, **options):
        ended, purged = services.call_sessions_cleanup()
        self.stdout.write(
            self.style.SUCCESS(
                f"Ended {ended} expired call session(s); deleted {purged} ended before the "
                f"last {agents_settings.CALL_SESSION_RETENTION}."
            )
        )
