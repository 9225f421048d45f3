"""Dask pipelines that compose the method (``spray``) and the store (``relevance_store``)."""
