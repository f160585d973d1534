"""The HTTP and trigger surface: blueprints, request and response shapes, problems, OpenAPI."""
