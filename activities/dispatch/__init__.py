"""Precise dispatch (精准派单): what a request is, where it happened, and who handles it.

The modules are layered; each imports only the ones above it in this list, so there is no
import circle (not even through imports inside functions):

- ``textindex``  one-pass matching of many short phrases in a text;
- ``rules``      ``rules.yaml`` (tiers and deadlines) and the YAML helpers and errors the
                 other loaders share;
- ``registry``   units, place names and the gazetteer (the CSV files and ``locations.yaml``);
- ``location``   the district and street of a request (``locate``);
- ``lexicon``    ``categories.yaml``: categories and the phrases that point at them;
- ``classify``   kind, category and tier of a request;
- ``learned``    the learned tier model's JSON file and P(tier) in pure Python (imports
                 none of these modules);
- ``routing``    ``routing.yaml`` and the most specific rule for a category at a place;
- ``config``     every file of the config folder, loaded and cross-checked together;
- ``decide``     the routing decision asked with the whole configuration;
- ``evaluation`` accuracy against a labelled set (``hotline routing eval``);
- ``training``   fits the learned model with scikit-learn (``hotline routing learn`` only;
                 the worker never imports it).

This file imports none of them, so importing one module does not load the others.
"""
