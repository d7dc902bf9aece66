"""Importing what langgraph.json names as `"./path/file.py:name"` (relative to the project's folder) or
`"package.module:name"`: graphs, the custom app, the auth object. One rule for all of them, and one kind of error:
a ConfigError naming the file, the key and what went wrong, so that the server refuses to start in one line."""

from __future__ import annotations

import importlib
import importlib.util
import sys
import traceback
from pathlib import Path
from types import ModuleType


def split_spec(spec: str) -> tuple[str, str]:
    """`("./path/file.py" or "package.module", "name")`; the name is after the last colon."""
    location, _, variable = spec.rpartition(":")
    return location, variable


def import_location(location: str, base_dir: Path, where: str, prefix: str) -> ModuleType:
    """The module at `location`: a file path (anything with a `/` or ending in `.py`, relative to `base_dir`),
    loaded under a name made of `prefix` and the file's last path parts, or a module name imported as usual.

    Raises ConfigError (`where` starts its message) for a missing file, a file that is not Python, or an exception
    raised while importing (its type, message and the line that raised it)."""
    from crongraph.config.loading import ConfigError

    try:
        if "/" in location or location.endswith(".py"):
            file = (base_dir / location).resolve()
            if not file.is_file():
                raise ConfigError(f"{where}: file {file} does not exist.")
            name = prefix + "_".join(file.with_suffix("").parts[-3:]).replace("-", "_")
            module_spec = importlib.util.spec_from_file_location(name, file)
            if module_spec is None or module_spec.loader is None:
                raise ConfigError(f"{where}: cannot load {file} as Python.")
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[name] = module
            module_spec.loader.exec_module(module)
            return module
        return importlib.import_module(location)
    except ConfigError:
        raise
    except Exception as exc:
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        raise ConfigError(
            f"{where}: importing it raised {type(exc).__name__}: {exc} (at {frame.filename}:{frame.lineno})."
        ) from None
