import gc
import os

# Each worker scores one request at a time: more OpenMP threads only fight the other workers.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fraudsite.settings")

from common import sqlite
from fraudsite.handlers import application as _application

application = _application()
sqlite.start()
# What the imports made lives as long as the worker: frozen, full collections skip it.
gc.freeze()
