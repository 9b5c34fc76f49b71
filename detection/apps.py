from django.apps import AppConfig


class DetectionConfig(AppConfig):
    name = "detection"

    def ready(self):
        from django.db.models.signals import post_migrate

        from modelops import retrain

        from .feedback import labelled_rows
        from .roles import ensure_roles

        # Labels flow into retraining; modelops does not import detection.
        if labelled_rows not in retrain.feedback_sources:
            retrain.feedback_sources.append(labelled_rows)

        # After auth's own post_migrate handler has created the permissions the groups get.
        post_migrate.connect(ensure_roles, sender=self)
