from django.db import migrations


def add_rows(apps, schema_editor):
    Project = apps.get_model("tokens", "Project")
    ProjectLimits = apps.get_model("limits", "ProjectLimits")
    have = set(ProjectLimits.objects.values_list("project_id", flat=True))
    ProjectLimits.objects.bulk_create(
        [ProjectLimits(project_id=pk) for pk in Project.objects.values_list("pk", flat=True) if pk not in have]
    )


class Migration(migrations.Migration):
    """Every project has its limits row (new ones get it when they are made)."""

    dependencies = [("limits", "0001_initial"), ("tokens", "0001_initial")]

    operations = [migrations.RunPython(add_rows, migrations.RunPython.noop)]
