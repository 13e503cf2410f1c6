"""One registry helper for every kind of named thing a config can choose (models, datasets, losses), timm style.

Each variant is its own named registration (``@MODELS.register("swishnet_slim")``), so it can be searched for;
registering a name twice is an error.
"""
from __future__ import annotations

from typing import Any, Callable, Iterator, TypeVar

T = TypeVar("T", bound=Callable)


class Registry:
    """Named constructors of one kind.

    Args:
        kind: what the entries are, for messages ("model", "dataset", "loss").
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Callable] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator registering a class or factory function under ``name``.

        Raises:
            ValueError: ``name`` is already registered to another object.
        """

        def decorator(obj: T) -> T:
            if name in self._entries and self._entries[name] is not obj:
                raise ValueError(f"{self.kind} name {name!r} is registered twice")
            self._entries[name] = obj
            return obj

        return decorator

    def get(self, name: str) -> Callable:
        """The constructor registered under ``name``.

        Raises:
            KeyError: unknown name (the message lists the known ones).
        """
        if not isinstance(name, str) or name not in self._entries:
            raise KeyError(f"unknown {self.kind} {name!r:.80}; known: {', '.join(self.names())}")
        return self._entries[name]

    def create(self, name: str, **kwargs: Any) -> Any:
        """Build the entry ``name`` with keyword arguments."""
        return self.get(name)(**kwargs)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
