"""The zoo: named model organisms, each built (compiled, trained or loaded) on demand."""

from interplab.zoo.registry import ZooEntry, get, names, register

__all__ = ["ZooEntry", "get", "names", "register"]
