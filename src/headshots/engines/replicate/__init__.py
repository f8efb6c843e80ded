"""The hosted engine: models on Replicate, one prediction per seed.

One package, one module per concern, imported only by who needs it:

- ``engine``: :class:`~headshots.engines.replicate.engine.ReplicateEngine`,
  the predictions of a call from create to a finished image;
- ``models``: the models it can drive and the input each takes;
- ``clients``: one API client and one download client per event loop;
- ``transport``: the one retry policy of every call;
- ``outputs``: a prediction's output, downloaded, checked and fitted;
- ``webhooks``: signed webhooks verified, and the waiters they wake;
- ``relay``: completions passed on from the web process to the workers.

This file imports nothing: the web app mounts the webhook route from
``webhooks`` without loading the Replicate client (decision 0001).
"""
