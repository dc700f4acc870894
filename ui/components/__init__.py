"""Small widgets, each ``show(..., key=...) -> value``; each owns its session-state keys."""
