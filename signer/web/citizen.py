"""Citizen pages (stub: being built)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

router = APIRouter()


def on_start(portal: Any) -> None:
    pass


def on_stop(portal: Any) -> None:
    pass
