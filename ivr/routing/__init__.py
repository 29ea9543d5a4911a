"""Who is calling: number normalisation, the caller registry (age), call history (repeat callers).

Logic only: no ARI JSON, no web server.  Import from the modules:

* ``ivr.routing.numbers`` — ``normalize(raw, region)`` → ``CallerNumber`` (E.164 or why not);
* ``ivr.routing.registry`` — ``age_on``, ``import_callers_csv``, the ``CallerRegistry`` lookups
  (``StoreRegistry``, ``HttpRegistry``) and ``registry_for(config.callers, store, session)``;
* ``ivr.routing.identify`` — ``identify(...)`` → ``CallerFacts``, once per call;
  ``CallerFacts.variables()`` is what a flow reads as ``caller.*``.
"""
