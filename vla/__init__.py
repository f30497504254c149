"""vla"""

from vla import package_paths as _package_paths  # noqa: F401  registers ${vla.package_dir:...}
from vla import precision as _precision  # noqa: F401  registers ${vla.cpu_precision:}
