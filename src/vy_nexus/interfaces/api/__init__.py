"""The HTTP interface: a FastAPI app (``app.create_app``) over one long-lived ``VyNexus``, served by uvicorn
(``server``). Importing this package imports nothing else: FastAPI loads only when a module here is used."""
