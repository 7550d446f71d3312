"""Workspace pages under ``/w/<wsId>/`` and invite links under ``/invite/<token>``."""
