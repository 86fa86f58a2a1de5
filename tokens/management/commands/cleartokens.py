from django.core.management.base import BaseCommand

from tokens import services
from tokens.conf import roomkey_settings


class Command(BaseCommand):
    help = (
        "Delete issued-token rows that expired longer ago than ROOMKEY['TOKEN_RETENTION'], "
        "in batches."
    )

    def handle(self, *args, **options):
        deleted = services.tokens_clear_expired()
        self.stdout.write(
            self.style.SUCCESS(
                f"Deleted {deleted} token row(s) expired before the last "
                f"{roomkey_settings.TOKEN_RETENTION}."
            )
        )
