"""The built-in demo: a synthetic world with planted Clever Hans shortcuts and a CNN trained on it.

``world`` generates the images (``scenes`` backgrounds, ``objects`` shapes, ``shortcuts``
the watermark), ``model`` holds the architecture and the committed checkpoint, ``train``
trains it and ``export`` writes the world to disk.
"""
