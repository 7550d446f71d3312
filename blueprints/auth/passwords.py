"""Password hashing at OWASP strength, with v1 hashes still accepted and upgraded."""

from __future__ import annotations

from werkzeug.security import check_password_hash, generate_password_hash

MIN_LENGTH = 15  # OWASP Authentication cheat sheet: 15 without MFA, which we do not have.
MAX_LENGTH = 128  # long enough for any passphrase, short enough to hash cheaply.


def hash_password(password: str, method: str) -> str:
    return generate_password_hash(password, method=method)


def _one_derivation(password: str, method: str) -> None:
    """Spend exactly what checking a real hash costs, so a failure's cause cannot be timed.

    Hashing the attempt with a fresh salt is one derivation every time; a cached dummy hash
    would cost two on its first use in each process.
    """
    generate_password_hash(password, method=method)


def verify(stored_hash: str | None, password: str, method: str) -> bool:
    """Check a password; unknown users and malformed hashes cost one derivation too.

    Werkzeug raises ValueError for a hash method it does not know, and returns False at once
    for a hash without two ``$``; a damaged row must look like a wrong password, never like a
    server error, and take as long.
    """
    if not stored_hash or stored_hash.count("$") < 2:
        _one_derivation(password, method)
        return False
    try:
        return check_password_hash(stored_hash, password)
    except (ValueError, TypeError):
        _one_derivation(password, method)
        return False


def needs_upgrade(stored_hash: str, method: str) -> bool:
    return not stored_hash.startswith(method + "$")


def length_problem(password: str) -> str | None:
    if len(password) < MIN_LENGTH:
        return f"Use at least {MIN_LENGTH} characters; a few words together work well."
    if len(password) > MAX_LENGTH:
        return f"Use at most {MAX_LENGTH} characters."
    return None
