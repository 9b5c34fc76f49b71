from django.apps import AppConfig


class DetectionConfig(AppConfig):
    name = "detection"

    def ready(self):
        from modelops import retrain

        from .feedback import labelled_rows

        # Labels flow into retraining; modelops does not import detection.
        if labelled_rows not in retrain.feedback_sources:
            retrain.feedback_sources.append(labelled_rows)
