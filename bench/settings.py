"""The app's settings plus a constant DRF endpoint, the yardstick of the HTTP benchmark."""

from fraudsite.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
