"""How a person is shown: one helper for pages, the CLI, graphs and chains."""
from __future__ import annotations


def display(name: str | None, email: str | None) -> str:
    """'Name <a@b>' when a name is known, else the bare address ('a@b'); '' for nothing.
    Unlike email.utils.formataddr it never quotes: this is for reading, not for a header."""
    name, email = (name or "").strip(), (email or "").strip()
    if name and email:
        return f"{name} <{email}>"
    return name or email
