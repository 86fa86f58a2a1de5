import json

from django.core.management.base import BaseCommand

from agents import services
from tokens.management.options import project_option


class Command(BaseCommand):
    help = (
        "Rotate a project's tool-token secret and print the new one (once). The previous "
        "secret keeps validating for ROOMKEY_AGENTS['TOOL_SECRET_GRACE']."
    )

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="Project id or name.")
        parser.add_argument("--json", action="store_true", help="Print one JSON object only.")

    def handle(self, *args, **options):
        project = project_option(options["project"])
        row = services.tool_secret_rotate(project=project)
        until = services.previous_valid_until(row)
        if options["json"]:
            self.stdout.write(
                json.dumps(
                    {
                        "project_id": str(project.pk),
                        "tool_secret": row.secret,
                        "previous_valid_until": until.isoformat() if until else None,
                    }
                )
            )
            return
        self.stdout.write(self.style.SUCCESS(f"New tool secret for {project.name} (shown once):"))
        self.stdout.write(row.secret)
        if until:
            self.stdout.write(f"The previous secret validates until {until.isoformat()}.")
