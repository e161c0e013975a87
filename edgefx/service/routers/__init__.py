"""One APIRouter per resource: system (health, ready, info), verify, explanations (maps, ask), the kiosk page."""
