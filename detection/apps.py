from django.apps import AppConfig


class DetectionConfig(AppConfig):
    name = "detection"

    def ready(self):
        from django.db.models.signals import post_migrate

        from .roles import ensure_roles

        # After auth's own post_migrate handler has created the permissions the groups get.
        post_migrate.connect(ensure_roles, sender=self)
