"""The static-file baseline of bench/portal_load.py: Starlette's StaticFiles under
the same uvicorn, serving the same PDF with no session, no database, no check.

    VNDCC_BENCH_STATIC=DIR python -m uvicorn --app-dir bench portal_static:app
"""

from __future__ import annotations

import os

from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

app = Starlette(routes=[Mount("/s", StaticFiles(directory=os.environ["VNDCC_BENCH_STATIC"]))])
