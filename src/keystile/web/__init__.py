"""The HTTP edge: app factory, error mapper, guards, routers."""
