"""langgraph.json moved to `crongraph.config`; this name stays for the modules that import it from here."""

from crongraph.config import EXAMPLE, ConfigError, GraphSpec, ProjectConfig, apply_environment, load

__all__ = ["EXAMPLE", "ConfigError", "GraphSpec", "ProjectConfig", "apply_environment", "load"]
