"""The local HTTP service: app factory, routers, uploads, worker pool, explanation store, the kiosk page."""
