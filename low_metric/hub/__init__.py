"""Layer 4, the Hub: model cards, the results dataset, publishing, and the guard that decides
whether a Hub repo may be loaded. May import ``core``, ``sources`` and ``scoring``; the faces
(``cli``, ``metric``, the Space, ``hub_scripts``) stand above it."""
