import json

from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError

from tokens import services
from tokens.models import Project


class Command(BaseCommand):
    help = "Create a project with its signing key and first API key (the key is shown once)."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--json", action="store_true", help="Print one JSON object only.")

    def handle(self, *args, name, **options):
        name = name.strip()
        if not name or len(name) > Project._meta.get_field("name").max_length:
            raise CommandError("A project name is 1 to 200 characters.")
        try:
            project, key = services.project_create(name=name)
        except IntegrityError:
            raise CommandError(f"A project named {name!r} exists already.") from None
        if options["json"]:
            self.stdout.write(json.dumps({"project_id": str(project.pk), "api_key": key.raw}))
            return
        self.stdout.write(self.style.SUCCESS(f"Project {project.name} created."))
        self.stdout.write(f"Project id: {project.pk}")
        self.stdout.write(f"API key (shown once): {key.raw}")
