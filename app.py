"""Vitals: the router only. Page config, the login gate, the shared sidebar and the pages a
user may reach by role; the page list and the rules are in ui/router.py."""

from ui import router

router.main()
