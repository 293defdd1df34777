"""orkestra's OpenAI-compatible routing proxy (``orkestra serve``).

Any OpenAI client gets routing by pointing its base URL at it::

    client = openai.OpenAI(base_url="http://127.0.0.1:8000/v1", api_key=ORKESTRA_KEY)
    client.chat.completions.create(model="orkestra/auto", messages=[...])

``create_app(config)`` builds the ASGI app (no module state: one app, one set of providers,
one usage log); ``run_server(config_path, host, port)`` serves it with uvicorn. See
``docs/proxy.md``. Needs the ``server`` extra: ``pip install 'orkestra-router[server]'``.
"""

from orkestra.server.app import create_app
from orkestra.server.config import (
    KeyConfig,
    ProviderConfig,
    ServerConfig,
    hash_key,
    load_config,
    new_key,
)
from orkestra.server.run import run_server

__all__ = [
    "KeyConfig",
    "ProviderConfig",
    "ServerConfig",
    "create_app",
    "hash_key",
    "load_config",
    "new_key",
    "run_server",
]
