"""vla"""

from vla import precision as _precision  # noqa: F401  registers ${vla.cpu_precision:}
