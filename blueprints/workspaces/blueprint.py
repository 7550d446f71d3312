"""The one blueprint every workspace page and invite link belongs to."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("workspaces", __name__)
