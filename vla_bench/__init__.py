"""vla-bench: simulation benchmark and RL harness for vision-language-action policies."""

__version__ = "0.1.0"
