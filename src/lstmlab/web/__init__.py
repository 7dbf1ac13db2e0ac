"""The web lab (``lstmlab web``): a static site of three pages - the memory games for people,
inside a language model, training in the browser - served from the package by a small
loopback server (``server.py``), with the small default models it ships (``models/``, made by
``python -m lstmlab.web.make_models``)."""
