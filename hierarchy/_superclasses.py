"""A superclass cut: every class assigned to exactly one superclass, with optional overlap."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from ._errors import HierarchyError, UnknownClassError

__all__ = ["SuperclassMap"]


@dataclass(frozen=True)
class SuperclassMap:
    """Class to superclass assignment with readable superclass names.

    Parameters
    ----------
    assignment : mapping of str to str
        Class id to superclass id.
    names : mapping of str to str
        Superclass id to a readable name.  Its order is the superclass order.
    method : str
        How the cut was made, e.g. ``"balanced:10"``.
    overlap : mapping of str to sequence of str, optional
        Superclass id to extra classes whose own superclass is another one:
        classes its specialist also covers because they are easily confused
        with its members (as in HD-CNN).  Routing uses ``assignment``;
        :meth:`extended` gives a specialist's classes.
    """

    assignment: Mapping[str, str]
    names: Mapping[str, str]
    method: str = ""
    overlap: Mapping[str, Sequence[str]] = field(default_factory=dict)
    _members: dict[str, list[str]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "assignment", dict(self.assignment))
        object.__setattr__(self, "names", dict(self.names))
        members: dict[str, list[str]] = {s: [] for s in self.names}
        for cls, sup in self.assignment.items():
            if sup not in members:
                raise HierarchyError(
                    f"class {cls!r} is assigned to superclass {sup!r}, which has no name entry"
                )
            members[sup].append(cls)
        empty = [s for s, m in members.items() if not m]
        if empty:
            raise HierarchyError(f"superclasses without classes: {empty[:5]}")
        object.__setattr__(self, "_members", members)
        overlap: dict[str, tuple[str, ...]] = {}
        for sup, extra in dict(self.overlap).items():
            if sup not in members:
                raise HierarchyError(f"overlap names superclass {sup!r}, which has no name entry")
            if isinstance(extra, str):
                raise HierarchyError(f"overlap of {sup!r} must be a list of classes, got a string")
            extra = tuple(dict.fromkeys(extra))
            for cls in extra:
                if cls not in self.assignment:
                    raise HierarchyError(f"overlap of {sup!r} lists {cls!r}, which is not a class of the cut")
                if self.assignment[cls] == sup:
                    raise HierarchyError(f"overlap of {sup!r} lists {cls!r}, which is already its member")
            if extra:
                overlap[sup] = extra
        object.__setattr__(self, "overlap", overlap)

    @classmethod
    def from_groups(
        cls, groups: Mapping[str, Iterable[str]], names: Mapping[str, str] | None = None,
        method: str = "",
    ) -> SuperclassMap:
        """Build from superclass id to its classes."""
        assignment: dict[str, str] = {}
        for sup, members in groups.items():
            for c in members:
                if c in assignment:
                    raise HierarchyError(
                        f"class {c!r} is in superclasses {assignment[c]!r} and {sup!r}; "
                        "each class belongs to exactly one"
                    )
                assignment[c] = sup
        return cls(assignment, dict(names or {s: s for s in groups}), method)

    @property
    def superclasses(self) -> tuple[str, ...]:
        """Superclass ids, in order."""
        return tuple(self.names)

    def __len__(self) -> int:
        return len(self.names)

    def of(self, cls: str) -> str:
        """The superclass id of ``cls``."""
        try:
            return self.assignment[cls]
        except KeyError:
            raise UnknownClassError(f"class {cls!r} has no superclass in this cut") from None

    def members(self, superclass: str) -> list[str]:
        """The classes of ``superclass``."""
        try:
            return list(self._members[superclass])
        except KeyError:
            raise UnknownClassError(
                f"unknown superclass {superclass!r}; known: {', '.join(self.names)}"
            ) from None

    def extended(self, superclass: str) -> list[str]:
        """The classes a specialist of ``superclass`` covers: its members, then its overlap."""
        return self.members(superclass) + list(self.overlap.get(superclass, ()))

    def sizes(self) -> dict[str, int]:
        """Superclass id to its number of classes."""
        return {s: len(m) for s, m in self._members.items()}

    def index(self, classes: Sequence[str]) -> list[int]:
        """Superclass index (into :attr:`superclasses`) for each class."""
        pos = {s: i for i, s in enumerate(self.names)}
        return [pos[self.of(c)] for c in classes]

    def validate(self, classes: Sequence[str]) -> None:
        """Check that the cut covers exactly ``classes``."""
        missing = [c for c in classes if c not in self.assignment]
        if missing:
            raise HierarchyError(
                f"{len(missing)} classes have no superclass, e.g. {missing[:5]}; "
                "every class must be in exactly one superclass"
            )
        known = set(classes)
        extra = [c for c in self.assignment if c not in known]
        if extra:
            raise HierarchyError(f"the cut assigns classes that the tree lacks: {extra[:5]}")

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict."""
        out: dict[str, object] = {"method": self.method, "names": dict(self.names),
                                  "assignment": dict(self.assignment)}
        if self.overlap:
            out["overlap"] = {s: list(v) for s, v in self.overlap.items()}
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> SuperclassMap:
        """Inverse of :meth:`to_dict`."""
        overlap = data.get("overlap") or {}
        if not isinstance(overlap, Mapping) or not all(isinstance(v, list) for v in overlap.values()):
            raise HierarchyError("'overlap' must map superclass ids to lists of classes")
        return cls(data["assignment"], data["names"], str(data.get("method", "")), overlap)  # type: ignore[arg-type]
