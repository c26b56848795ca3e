"""mpcnet: run an unmodified MPyC program among parties behind NATs, in one step.

The work is done by the ``mpcnet`` binary this package installs; ``python -m mpcnet`` runs it.
"""

from importlib.metadata import version

__version__ = version("mpcnet")
