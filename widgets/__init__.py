"""dni's Jupyter layer: bokeh figures of the paper (static) and the live widget explorer.

Installed as ``dni_widgets``. Imports only dni's public API.
"""
