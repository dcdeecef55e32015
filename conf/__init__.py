"""vidgen's configs, installed as the package ``vidgen.conf`` (see pyproject.toml) so that Hydra finds them
as ``pkg://vidgen.conf`` from an editable checkout and from a wheel alike; Hydra needs this file to
recognise the package."""
