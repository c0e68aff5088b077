"""``anyres serve``: a local web app to upscale, enhance and compare (``pip install -e ".[serve]"``).

:func:`anyres.serve.app.create_app` builds the FastAPI app; :mod:`anyres.serve.jobs` runs its jobs one at a time,
each as the ``anyres`` command itself, so a result is the file the command line writes. The page lives in
``static/`` (plain HTML, JS and CSS, nothing fetched from the internet).
"""
