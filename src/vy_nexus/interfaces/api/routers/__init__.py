"""One router per area; ``app.create_app`` includes them all."""
