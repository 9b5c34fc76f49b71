import gc
import os

# One OpenMP thread per web worker: each worker scores one request at a time, and extra
# threads per worker only fight the other workers for the cores.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fraudsite.settings")

from django.core.wsgi import get_wsgi_application

from common import sqlite

application = get_wsgi_application()
sqlite.start()
# What importing Django and the app made lives as long as the worker: frozen out of the
# collector's generations, it is not traversed again by every full collection.
gc.freeze()
