import json
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from tokens import services
from tokens.management.options import project_option


class Command(BaseCommand):
    help = "Create an API key for a project (the key is shown once)."

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="Project id or name.")
        parser.add_argument("--name", default="", help="A label for the key.")
        parser.add_argument("--expires-in-days", type=int, help="Expire after this many days.")
        parser.add_argument("--json", action="store_true", help="Print one JSON object only.")

    def handle(self, *args, **options):
        project = project_option(options["project"])
        days = options["expires_in_days"]
        if days is not None and days < 1:
            raise CommandError("--expires-in-days must be at least 1.")
        try:
            expires_at = timezone.now() + timedelta(days=days) if days else None
        except OverflowError:
            raise CommandError("--expires-in-days is too large.") from None
        key = services.api_key_create(project=project, name=options["name"], expires_at=expires_at)
        if options["json"]:
            self.stdout.write(
                json.dumps(
                    {"project_id": str(project.pk), "api_key": key.raw, "prefix": key.row.prefix}
                )
            )
            return
        self.stdout.write(self.style.SUCCESS(f"API key for {project.name} (shown once):"))
        self.stdout.write(key.raw)
