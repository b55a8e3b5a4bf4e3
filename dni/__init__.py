"""dni — Deep Noise Injection training of recurrent networks (see README)."""
__version__ = "0.1.0"
